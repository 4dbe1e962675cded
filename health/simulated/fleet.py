"""The simulated fleet's hardware: nodes and GPUs, their load, power, heat and faults.

Deterministic: the same seed, the same loads and the same calls give the
same fleet. Randomness that changes state (fault arrivals) comes from one
seeded generator whose state is saved with the fleet; noise on readings is
a pure function of (node, GPU, minute), so reading never changes anything.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from health.simulated.faults import FAULTS, Clears, FaultKind

NVLINKS_PER_GPU = 18  # NVLink 4 on H100/H200 SXM
MAX_EVENTS_KEPT = 64

# Per-model electrical figures: (idle low, idle high, busy low, busy high, power limit, slowdown C)
_MODELS: dict[str, tuple[float, float, float, float, float, float]] = {
    "H100-SXM": (70.0, 90.0, 550.0, 690.0, 700.0, 87.0),
    "H200": (75.0, 95.0, 560.0, 690.0, 700.0, 87.0),
    "A100-SXM": (55.0, 70.0, 300.0, 390.0, 400.0, 85.0),
    "B200": (110.0, 140.0, 820.0, 990.0, 1000.0, 87.0),
}
# Burn-in figures of a healthy GPU under sustained load: (bf16 TFLOP/s, HBM GB/s, NCCL busbw)
_PERF: dict[str, tuple[float, float, float]] = {
    "H100-SXM": (680.0, 3000.0, 460.0),
    "H200": (680.0, 4240.0, 460.0),
    "A100-SXM": (280.0, 1700.0, 230.0),
    "B200": (1600.0, 6500.0, 700.0),
}


NOISE_START = 0x9E3779B97F4A7C15


def noise_state(h: int, *key: int) -> int:
    """The hash of ``key`` continued from ``h``: a prefix hashed once serves many keys."""
    for k in key:
        h ^= (k + 0x632BE59BD9B4E019 + (h << 6) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h


def noise_value(h: int) -> float:
    h ^= h >> 31
    return (h % 2_000_000) / 1_000_000.0 - 1.0


def unit_noise(*key: int) -> float:
    """A deterministic value in [-1, 1) from integers (a small integer hash)."""
    return noise_value(noise_state(NOISE_START, *key))


@dataclass(frozen=True, slots=True)
class FleetSpec:
    site: str = "hel1"
    room: str = "hall-a"
    racks: int = 4
    nodes_per_rack: int = 8
    gpus_per_node: int = 8
    gpu_model: str = "H100-SXM"
    rack_power_budget_watts: float = 40_000.0
    # Faults per node per simulated hour, over all kinds (weighted by FAULTS).
    fault_rate_per_node_hour: float = 0.0
    fault_weights: Mapping[str, float] = field(default_factory=dict)

    def rack_name(self, r: int) -> str:
        return f"r{r + 1:02d}"

    def node_name(self, r: int, n: int) -> str:
        return f"gpu-{r * self.nodes_per_rack + n + 1:03d}"


@dataclass(slots=True)
class SimGpu:
    index: int
    uuid: str
    serial: str
    pci_bus_id: str
    present: bool = True
    utilisation: float = 0.0
    ecc_volatile: int = 0
    ecc_aggregate: int = 0
    remap_pending: bool = False
    remap_failure: bool = False
    remap_uncorrectable: int = 0
    nvlink_down: list[int] = field(default_factory=list)
    nvlink_crc: int = 0
    nvlink_replay: int = 0
    pcie_width: int = 16
    thermal_until: float = 0.0
    power_brake_until: float = 0.0
    gemm_factor: float = 1.0
    # Where this GPU sits in its model's idle and busy power ranges (0..1): fixed per GPU.
    spread: tuple[float, float] = (0.5, 0.5)
    # The noise hash of (node index, GPU index): a reading continues it with the minute.
    noise: int = NOISE_START


@dataclass(slots=True)
class SimulatedNode:
    name: str
    index: int
    rack: str
    model: str
    gpus: list[SimGpu]
    nccl_factor: float = 1.0
    ib_down: list[int] = field(default_factory=list)  # HCA indices whose port is down
    faults: list[dict[str, Any]] = field(default_factory=list)  # active, for operators' eyes
    events: list[dict[str, Any]] = field(default_factory=list)  # XID log, newest last


class SimulatedFleet:
    def __init__(self, spec: FleetSpec, seed: int, now: float) -> None:
        self.spec = spec
        self.seed = seed
        self.now = now
        self.rng = random.Random(seed)
        self.nodes: dict[str, SimulatedNode] = {}
        if spec.gpu_model not in _MODELS:
            raise ValueError(
                f"unknown simulated GPU model {spec.gpu_model!r}; "
                f"known: {', '.join(sorted(_MODELS))}"
            )
        seeded = noise_state(NOISE_START, seed)
        for r in range(spec.racks):
            for n in range(spec.nodes_per_rack):
                idx = r * spec.nodes_per_rack + n
                name = spec.node_name(r, n)
                at = (noise_state(seeded, idx), noise_state(NOISE_START, idx))
                gpus = [self._new_gpu(idx, g, at) for g in range(spec.gpus_per_node)]
                self.nodes[name] = SimulatedNode(
                    name=name, index=idx, rack=spec.rack_name(r), model=spec.gpu_model, gpus=gpus
                )
        self.next_fault_at = self._draw_next_fault(now)
        self.injected = 0
        # What changed since whoever persists the fleet last looked (cleared by them): a node's
        # hardware state, and the GPUs' load, which moves with every step of time.
        self.changed: set[str] = set()
        self.loads_changed = False

    def _new_gpu(self, node_idx: int, g: int, at: tuple[int, int]) -> SimGpu:
        """GPU ``g`` of node ``node_idx``; ``at``: the noise hashes of (seed, node) and (node),
        hashed once per node (a fleet of 10,000 nodes has 80,000 GPUs to build)."""
        h = int((noise_value(noise_state(at[0], g)) + 1.0) * 2**31)
        per_gpu = noise_state(at[1], g)
        return SimGpu(
            index=g,
            uuid=f"GPU-{h & 0xFFFFFFFF:08x}-{node_idx:04x}-{g:04x}-sim0-{self.seed & 0xFFFF:04x}",
            serial=f"16523{node_idx:05d}{g:02d}",
            pci_bus_id=f"00000000:{(0x18 + 0x10 * g) & 0xFF:02x}:00.0",
            spread=(
                0.5 + 0.5 * noise_value(noise_state(per_gpu, 1)),
                0.5 + 0.5 * noise_value(noise_state(per_gpu, 2)),
            ),
            noise=per_gpu,
        )

    # -- time and faults ---------------------------------------------------------------

    def _draw_next_fault(self, after: float) -> float:
        rate = self.spec.fault_rate_per_node_hour * len(self.nodes) / 3600.0
        if rate <= 0:
            return float("inf")
        return after + self.rng.expovariate(rate)

    def advance(self, to: float) -> list[tuple[str, FaultKind]]:
        """Move time forward, injecting faults as they fall due. Returns those injected."""
        injected: list[tuple[str, FaultKind]] = []
        while self.next_fault_at <= to:
            at = self.next_fault_at
            self.now = at
            node = self.rng.choice(list(self.nodes))
            kind = self._pick_kind()
            gpu = self.rng.randrange(self.spec.gpus_per_node)
            self.inject(node, kind, gpu=gpu)
            injected.append((node, kind))
            self.next_fault_at = self._draw_next_fault(at)
        self.now = max(self.now, to)
        return injected

    def _pick_kind(self) -> FaultKind:
        weights = {
            k: self.spec.fault_weights.get(k.value, spec.weight) for k, spec in FAULTS.items()
        }
        kinds = [k for k, w in weights.items() if w > 0]
        return self.rng.choices(kinds, weights=[weights[k] for k in kinds])[0]

    def inject(self, node: str, kind: FaultKind, gpu: int = 0) -> None:
        """Give ``node`` the fault ``kind`` on GPU ``gpu``, with its real signature."""
        n = self.nodes[node]
        g = n.gpus[gpu % len(n.gpus)]
        # A fault happens after whatever was read at this instant: move the clock on a little,
        # so a reader's "since my last read" cursor sees it exactly once.
        self.now += 0.001
        self.changed.add(node)
        self.injected += 1
        spec = FAULTS[kind]
        n.faults.append(
            {"kind": kind.value, "gpu": g.index, "at": self.now, "clears": spec.clears.value}
        )
        match kind:
            case FaultKind.XID79_FELL_OFF_BUS:
                g.present = False
                self._xid(n, g, 79, "pid=0, GPU has fallen off the bus.")
            case FaultKind.XID48_DBE:
                g.ecc_volatile += 1
                g.ecc_aggregate += 1
                self._xid(
                    n,
                    g,
                    48,
                    "pid='<unknown>', name=<unknown>, An uncorrectable double "
                    "bit error (DBE) has been detected on GPU in the framebuffer",
                )
            case FaultKind.XID94_CONTAINED_ECC:
                g.ecc_aggregate += 1
                g.remap_pending = True
                self._xid(
                    n, g, 94, "pid=4242, name=python3, Contained: SM (0x1). RST: No, D-RST: No"
                )
            case FaultKind.XID95_UNCONTAINED_ECC:
                g.ecc_volatile += 1
                g.ecc_aggregate += 1
                g.remap_pending = True
                self._xid(
                    n, g, 95, "pid=4242, name=python3, Uncontained: FBHUB. RST: Yes, D-RST: No"
                )
            case FaultKind.ROW_REMAP_PENDING:
                g.remap_pending = True
                self._xid(
                    n, g, 63, "Row Remapper: New row marked for remapping, reset gpu to activate."
                )
            case FaultKind.ROW_REMAP_FAILURE:
                g.remap_failure = True
                g.remap_uncorrectable += 1
                self._xid(n, g, 64, "Row Remapper Error: Failed to remap row")
            case FaultKind.NVLINK_DOWN:
                link = self.rng.randrange(NVLINKS_PER_GPU)
                if link not in g.nvlink_down:
                    g.nvlink_down.append(link)
                g.nvlink_crc += 5000
                g.nvlink_replay += 800
                self._xid(n, g, 74, f"NVLink: fatal error detected on link {link}")
            case FaultKind.PCIE_X8:
                g.pcie_width = 8
            case FaultKind.THERMAL_THROTTLE:
                g.thermal_until = self.now + spec.duration_seconds
            case FaultKind.POWER_BRAKE:
                g.power_brake_until = self.now + spec.duration_seconds
            case FaultKind.SLOW_GEMM:
                g.gemm_factor = 0.70
            case FaultKind.LOW_NCCL:
                n.nccl_factor = 0.55
            case FaultKind.IB_PORT_DOWN:
                hca = g.index  # one HCA per GPU, as on HGX nodes
                if hca not in n.ib_down:
                    n.ib_down.append(hca)

    def _xid(self, n: SimulatedNode, g: SimGpu, code: int, message: str) -> None:
        n.events.append(
            {"at": self.now, "bus": g.pci_bus_id, "code": code, "msg": message, "gpu": g.index}
        )
        del n.events[:-MAX_EVENTS_KEPT]

    def reset(self, node: str) -> None:
        """A GPU reset: volatile errors clear and pending row remaps take effect."""
        n = self.nodes[node]
        self.changed.add(node)
        for g in n.gpus:
            if not g.present:
                continue  # a GPU off the bus does not come back from a reset
            g.ecc_volatile = 0
            if g.remap_pending and not g.remap_failure:
                g.remap_pending = False
        n.faults = [f for f in n.faults if f["clears"] != Clears.RESET.value]

    def repair(self, node: str) -> None:
        """Hardware work done: the node is as new (same GPUs, reseated or swapped in place)."""
        n = self.nodes[node]
        self.changed.add(node)
        for g in n.gpus:
            g.present = True
            g.ecc_volatile = 0
            g.remap_pending = g.remap_failure = False
            g.nvlink_down = []
            g.pcie_width = 16
            g.thermal_until = g.power_brake_until = 0.0
            g.gemm_factor = 1.0
        n.nccl_factor = 1.0
        n.ib_down = []
        n.faults = []

    def set_load(self, node: str, utilisation: Sequence[float]) -> None:
        n = self.nodes.get(node)
        if n is None:
            return
        self.loads_changed = True
        for g, u in zip(n.gpus, utilisation, strict=False):
            g.utilisation = min(1.0, max(0.0, u))

    def nodes_needing_job_kill(self, injected: Iterable[tuple[str, FaultKind]]) -> list[str]:
        return sorted({node for node, kind in injected if FAULTS[kind].kills_jobs})

    # -- physics -------------------------------------------------------------------------

    def gpu_power(self, n: SimulatedNode, g: SimGpu, at: int) -> float:
        """``at``: the GPU's noise hash continued with the minute (noise_state(g.noise, m))."""
        idle_lo, idle_hi, busy_lo, busy_hi, limit, _ = _MODELS[n.model]
        idle_at, busy_at = g.spread
        idle = idle_lo + (idle_hi - idle_lo) * idle_at
        busy = busy_lo + (busy_hi - busy_lo) * busy_at
        p = idle + (busy - idle) * math.pow(g.utilisation, 1.2)
        p *= 1.0 + 0.02 * noise_value(at)
        if g.power_brake_until > self.now:
            p = min(p, 0.45 * limit)
        return min(p, limit)

    def host_power(self, n: SimulatedNode) -> float:
        util = sum(g.utilisation for g in n.gpus) / max(1, len(n.gpus))
        return float(1000.0 + 400.0 * util)

    def performance(self, model: str) -> tuple[float, float, float]:
        return _PERF[model]

    def limits(self, model: str) -> tuple[float, float]:
        m = _MODELS[model]
        return m[4], m[5]

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)
