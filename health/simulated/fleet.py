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

from health.simulated.faults import FAULTS, Clears, FaultKind
from health.simulated.hardware import (
    MODELS,
    NVLINKS_PER_GPU,
    PERF,
    POWER_LIMITS,
    SimGpu,
    SimulatedNode,
    noise_value,
)

MAX_EVENTS_KEPT = 64


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


class SimulatedFleet:
    def __init__(self, spec: FleetSpec, seed: int, now: float) -> None:
        self.spec = spec
        self.seed = seed
        self.now = now
        self.rng = random.Random(seed)
        self.nodes: dict[str, SimulatedNode] = {}
        if spec.gpu_model not in MODELS:
            raise ValueError(
                f"unknown simulated GPU model {spec.gpu_model!r}; "
                f"known: {', '.join(sorted(MODELS))}"
            )
        # No GPU is made here: each node's are made when something touches them.
        count = spec.gpus_per_node
        for r in range(spec.racks):
            rack = spec.rack_name(r)
            for n in range(spec.nodes_per_rack):
                idx = r * spec.nodes_per_rack + n
                name = spec.node_name(r, n)
                self.nodes[name] = SimulatedNode(
                    name, idx, rack, spec.gpu_model, count, seed, [0.0] * count
                )
        self.next_fault_at = self._draw_next_fault(now)
        self.injected = 0
        # What changed since whoever persists the fleet last looked (cleared by them): a node's
        # hardware state, and the GPUs' load, which moves with every step of time.
        self.changed: set[str] = set()
        self.loads_changed = False

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
        kept = [f for f in n.faults if f["clears"] != Clears.RESET.value]
        # Marked changed only when it is (burn-in resets every node it starts on).
        changed = len(kept) != len(n.faults)
        for g in () if n.pristine else n.gpus:
            if not g.present:
                continue  # a GPU off the bus does not come back from a reset
            if g.ecc_volatile:
                g.ecc_volatile = 0
                changed = True
            if g.remap_pending and not g.remap_failure:
                g.remap_pending = False
                changed = True
        n.faults = kept
        if changed:
            self.changed.add(node)

    def repair(self, node: str) -> None:
        """Hardware work done: the node is as new (same GPUs, reseated or swapped in place)."""
        n = self.nodes[node]
        if n.pristine and not n.faults and n.nccl_factor == 1.0 and not n.ib_down:
            return  # as new already
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
        loads = n.loads
        for i, u in zip(range(len(loads)), utilisation, strict=False):
            loads[i] = min(1.0, max(0.0, u))

    def nodes_needing_job_kill(self, injected: Iterable[tuple[str, FaultKind]]) -> list[str]:
        return sorted({node for node, kind in injected if FAULTS[kind].kills_jobs})

    # -- physics -------------------------------------------------------------------------

    def gpu_power(self, n: SimulatedNode, g: SimGpu, at: int) -> float:
        """``at``: the GPU's noise hash continued with the minute (noise_state(g.noise, m))."""
        identity = n.identities[g.index]
        limit = MODELS[n.model][4] if n.power_limits is None else n.power_limits[g.index]
        idle, busy = identity.idle_watts, identity.busy_watts
        p = idle + (busy - idle) * math.pow(g.utilisation, 1.2)
        p *= 1.0 + 0.02 * noise_value(at)
        if g.power_brake_until > self.now:
            p = min(p, 0.45 * limit)
        return min(p, limit)

    def set_power_limit(self, node: str, index: int, watts: float) -> float:
        """A GPU's power limit set (clamped to its model's range, as NVML would refuse
        outside it); returns the limit read back. The GPU's draw is held under it."""
        n = self.nodes[node]
        lo, hi, default = POWER_LIMITS[n.model]
        if not 0 <= index < n.gpu_count:
            raise IndexError(index)
        limits = n.power_limits if n.power_limits is not None else [default] * n.gpu_count
        limits[index] = min(hi, max(lo, watts))
        n.power_limits = None if all(v == default for v in limits) else limits
        _ = n.gpus  # a capped node is read GPU by GPU (health/simulated/telemetry.py)
        self.changed.add(node)
        return limits[index]

    def power_limit(self, n: SimulatedNode, index: int) -> float:
        return POWER_LIMITS[n.model][2] if n.power_limits is None else n.power_limits[index]

    def host_power(self, n: SimulatedNode) -> float:
        util = sum(n.loads) / max(1, n.gpu_count)
        return float(1000.0 + 400.0 * util)

    def performance(self, model: str) -> tuple[float, float, float]:
        return PERF[model]

    def limits(self, model: str) -> tuple[float, float]:
        m = MODELS[model]
        return m[4], m[5]

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)
