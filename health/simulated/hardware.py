"""A simulated node's hardware: what each GPU is (a pure function of the seed, the node and
its index), its state once something touched it, and the noise readings are made with.

Deterministic: noise is a pure function of integers (node, GPU, minute), so reading never
changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NVLINKS_PER_GPU = 18  # NVLink 4 on H100/H200 SXM, NVLink 5 on B200/GB200
# An NVL72 rack: 18 compute trays of 4 GB200 GPUs in one NVLink domain through 9 NVLink
# switch trays; each GPU has 2 of its 18 links on every switch tray.
NVL72_SWITCH_TRAYS = 9
LINKS_PER_SWITCH_TRAY = NVLINKS_PER_GPU // NVL72_SWITCH_TRAYS
# Models whose racks form one NVLink domain (as health/models.py RACK_NVLINK_MODELS).
RACK_DOMAIN_MODELS = frozenset({"GB200"})

# Per-model electrical figures: (idle low, idle high, busy low, busy high, power limit, slowdown C)
MODELS: dict[str, tuple[float, float, float, float, float, float]] = {
    "H100-SXM": (70.0, 90.0, 550.0, 690.0, 700.0, 87.0),
    "H200": (75.0, 95.0, 560.0, 690.0, 700.0, 87.0),
    "A100-SXM": (55.0, 70.0, 300.0, 390.0, 400.0, 85.0),
    "B200": (110.0, 140.0, 820.0, 990.0, 1000.0, 87.0),
    "GB200": (130.0, 170.0, 980.0, 1190.0, 1200.0, 87.0),
}
# Per-model power limits a GPU takes (NVML's constraints and default): (min, max, default).
POWER_LIMITS: dict[str, tuple[float, float, float]] = {
    "H100-SXM": (200.0, 700.0, 700.0),
    "H200": (200.0, 700.0, 700.0),
    "A100-SXM": (100.0, 400.0, 400.0),
    "B200": (200.0, 1000.0, 1000.0),
    "GB200": (200.0, 1200.0, 1200.0),
}
# Burn-in figures of a healthy GPU under sustained load: (bf16 TFLOP/s, HBM GB/s, NCCL busbw)
PERF: dict[str, tuple[float, float, float]] = {
    "H100-SXM": (680.0, 3000.0, 460.0),
    "H200": (680.0, 4240.0, 460.0),
    "A100-SXM": (280.0, 1700.0, 230.0),
    "B200": (1600.0, 6500.0, 700.0),
    "GB200": (1700.0, 7000.0, 800.0),
}


NOISE_START = 0x9E3779B97F4A7C15


_MIX, _MUL, _MASK = 0x632BE59BD9B4E019, 0xBF58476D1CE4E5B9, 0xFFFFFFFFFFFFFFFF


def noise_state(h: int, *key: int) -> int:
    """The hash of ``key`` continued from ``h``: a prefix hashed once serves many keys."""
    for k in key:
        h ^= (k + _MIX + (h << 6) + (h >> 2)) & _MASK
        h = (h * _MUL) & _MASK
    return h


def noise_value(h: int) -> float:
    h ^= h >> 31
    return (h % 2_000_000) / 1_000_000.0 - 1.0


def unit_noise(*key: int) -> float:
    """A deterministic value in [-1, 1) from integers (a small integer hash)."""
    return noise_value(noise_state(NOISE_START, *key))


@dataclass(slots=True)
class GpuIdentity:
    """What a simulated GPU is for its whole life, a pure function of (seed, node, index):
    computed when first needed, never stored (a fleet of 10,240 nodes has 81,920; not frozen,
    which makes one four times slower). Never changed once made."""

    index: int
    uuid: str
    serial: str
    pci_bus_id: str
    # Where this GPU sits in its model's idle and busy power ranges (0..1).
    spread: tuple[float, float]
    # The noise hash of (node index, GPU index): a reading continues it with the minute.
    noise: int
    # Its power at idle and at full load (from ``spread``), before noise.
    idle_watts: float
    busy_watts: float


def rack_domain(seed: int, model: str, rack: str) -> str:
    """The NVLink domain (``<cluster uuid>/<clique>``) of a rack whose model forms one, as
    NVML would name it: a pure function of the seed and the rack; "" for other models."""
    if model not in RACK_DOMAIN_MODELS:
        return ""
    h = noise_state(NOISE_START, seed, *rack.encode())
    g = noise_state(h, 1)
    x = f"{h:016x}{g:016x}"
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-8{x[17:20]}-{x[20:32]}/1"


def gpu_identities(seed: int, node_idx: int, model: str, count: int) -> tuple[GpuIdentity, ...]:
    """The identities of node ``node_idx``'s ``count`` GPUs."""
    idle_lo, idle_hi, busy_lo, busy_hi, _, _ = MODELS[model]
    seeded = noise_state(noise_state(NOISE_START, seed), node_idx)
    per_node = noise_state(NOISE_START, node_idx)
    node_part = f"-{node_idx:04x}-"
    seed_part = f"-sim0-{seed & 0xFFFF:04x}"
    serial = f"16523{node_idx:05d}"
    out = []
    # noise_state and noise_value written out, with what does not change per GPU hoisted
    # (the hash's mix of the node's prefix): this runs for every GPU of the site in each
    # process that reads the whole site, where the calls cost more than the arithmetic.
    seeded_mix = _MIX + (seeded << 6) + (seeded >> 2)
    node_mix = _MIX + (per_node << 6) + (per_node >> 2)
    for g in range(count):
        h = seeded ^ ((g + seeded_mix) & _MASK)
        h = (h * _MUL) & _MASK
        h ^= h >> 31
        uuid_part = int(((h % 2_000_000) / 1_000_000.0 - 1.0 + 1.0) * 2**31) & 0xFFFFFFFF
        per_gpu = per_node ^ ((g + node_mix) & _MASK)
        per_gpu = (per_gpu * _MUL) & _MASK
        gpu_mix = _MIX + (per_gpu << 6) + (per_gpu >> 2)
        x = ((per_gpu ^ ((1 + gpu_mix) & _MASK)) * _MUL) & _MASK
        x ^= x >> 31
        idle_at = 0.5 + 0.5 * ((x % 2_000_000) / 1_000_000.0 - 1.0)
        x = ((per_gpu ^ ((2 + gpu_mix) & _MASK)) * _MUL) & _MASK
        x ^= x >> 31
        busy_at = 0.5 + 0.5 * ((x % 2_000_000) / 1_000_000.0 - 1.0)
        out.append(
            GpuIdentity(
                g,
                f"GPU-{uuid_part:08x}{node_part}{g:04x}{seed_part}",
                f"{serial}{g:02d}",
                _PCI_BUS_IDS[g] if g < len(_PCI_BUS_IDS) else _pci_bus_id(g),
                (idle_at, busy_at),
                per_gpu,
                idle_lo + (idle_hi - idle_lo) * idle_at,
                busy_lo + (busy_hi - busy_lo) * busy_at,
            )
        )
    return tuple(out)


def _pci_bus_id(g: int) -> str:
    return f"00000000:{(0x18 + 0x10 * g) & 0xFF:02x}:00.0"


_PCI_BUS_IDS = tuple(_pci_bus_id(g) for g in range(16))


@dataclass(slots=True)
class SimGpu:
    """A GPU's state once something touched it (a fault, a reset, a repair); until then its
    node has none of these and reads as its identity says (SimulatedNode.gpus)."""

    index: int
    uuid: str
    serial: str
    pci_bus_id: str
    # The node's loads, one per GPU (SimulatedNode.loads): the GPU's is ``loads[index]``.
    loads: list[float] = field(default_factory=list, repr=False, compare=False)
    present: bool = True
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
    spread: tuple[float, float] = (0.5, 0.5)
    noise: int = NOISE_START

    @property
    def utilisation(self) -> float:
        return self.loads[self.index]

    @utilisation.setter
    def utilisation(self, value: float) -> None:
        self.loads[self.index] = value


@dataclass(slots=True)
class SimulatedNode:
    name: str
    index: int
    rack: str
    model: str
    gpu_count: int
    seed: int
    # Each GPU's load (0..1), which moves with every step of time.
    loads: list[float]
    nccl_factor: float = 1.0
    ib_down: list[int] = field(default_factory=list)  # HCA indices whose port is down
    faults: list[dict[str, Any]] = field(default_factory=list)  # active, for operators' eyes
    events: list[dict[str, Any]] = field(default_factory=list)  # XID log, newest last
    # Each GPU's power limit where one was set (a cap); None: every GPU at its default.
    power_limits: list[float] | None = None
    _identities: tuple[GpuIdentity, ...] | None = field(default=None, repr=False, compare=False)
    _gpus: list[SimGpu] | None = field(default=None, repr=False)

    @property
    def identities(self) -> tuple[GpuIdentity, ...]:
        if self._identities is None:
            self._identities = gpu_identities(self.seed, self.index, self.model, self.gpu_count)
        return self._identities

    @property
    def pristine(self) -> bool:
        """No GPU of this node was ever touched: each is as its identity says."""
        return self._gpus is None

    @property
    def gpus(self) -> list[SimGpu]:
        """The GPUs' state, made on first use (a reader of a pristine node needs none)."""
        if self._gpus is None:
            self._gpus = [
                SimGpu(
                    index=i.index,
                    uuid=i.uuid,
                    serial=i.serial,
                    pci_bus_id=i.pci_bus_id,
                    loads=self.loads,
                    spread=i.spread,
                    noise=i.noise,
                )
                for i in self.identities
            ]
        return self._gpus
