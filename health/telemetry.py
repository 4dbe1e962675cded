"""What a telemetry source reports about a node's GPUs, and the protocol it implements.

The NVML source (on a real node) and the simulated fleet both produce these
snapshots; the checks read nothing else, so they run the same on either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Names of clock event (throttle) reasons, after NVML's nvmlClocksEventReason* bits.
THROTTLE_GPU_IDLE = "gpu_idle"
THROTTLE_SW_POWER_CAP = "sw_power_cap"
THROTTLE_HW_SLOWDOWN = "hw_slowdown"
THROTTLE_SW_THERMAL = "sw_thermal_slowdown"
THROTTLE_HW_THERMAL = "hw_thermal_slowdown"
THROTTLE_HW_POWER_BRAKE = "hw_power_brake_slowdown"
THROTTLE_SYNC_BOOST = "sync_boost"


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU as a telemetry source sees it at one moment."""

    index: int
    uuid: str
    serial: str
    model: str
    pci_bus_id: str
    temperature_celsius: float
    temperature_slowdown_celsius: float
    power_watts: float
    power_limit_watts: float
    utilisation_ratio: float
    ecc_volatile_uncorrected: int
    ecc_aggregate_uncorrected: int
    retired_pages_pending: bool
    remapped_rows_pending: bool
    remapped_rows_failure: bool
    remapped_rows_uncorrectable: int
    nvlink_links_total: int
    nvlink_links_down: tuple[int, ...]
    nvlink_crc_errors: int
    nvlink_replay_errors: int
    pcie_gen_current: int
    pcie_gen_max: int
    pcie_width_current: int
    pcie_width_max: int
    throttle_reasons: frozenset[str]
    vbios_version: str = ""


@dataclass(frozen=True, slots=True)
class XidEvent:
    """One ``NVRM: Xid`` line from the kernel log."""

    at: datetime
    pci_bus_id: str
    code: int
    message: str
    gpu_index: int | None = None


@dataclass(frozen=True, slots=True)
class IbPort:
    """One InfiniBand/RoCE port as sysfs (``/sys/class/infiniband``) reports it."""

    device: str
    port: int
    # The names after the numeric code in sysfs: "ACTIVE", "LinkUp".
    state: str
    phys_state: str
    rate_gbps: float
    # "InfiniBand" or "Ethernet" (RoCE); "" where sysfs does not say.
    link_layer: str = ""

    @property
    def name(self) -> str:
        return f"{self.device}/{self.port}"


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    node: str
    at: datetime
    gpus: tuple[GpuReading, ...]
    xid_events: tuple[XidEvent, ...]
    # None when the kernel log could be read; else why it could not (never pass silently).
    xid_source_error: str | None = None
    host_power_watts: float = 0.0
    driver_version: str = ""
    cuda_version: str = ""
    ib_ports: tuple[IbPort, ...] = ()

    @property
    def power_watts(self) -> float:
        return self.host_power_watts + sum(g.power_watts for g in self.gpus)


@dataclass(frozen=True, slots=True)
class NodeExpectation:
    """What the inventory says the node should have; checks compare against it."""

    gpu_count: int
    gpu_model: str = ""
    gpu_uuids: tuple[str, ...] = ()
    nvlinks_per_gpu: int | None = None
    pcie_width: int | None = None
    # The rate every InfiniBand/RoCE port should run at (e.g. 400 for NDR); None: not judged.
    ib_rate_gbps: float | None = None


class TelemetrySourceError(RuntimeError):
    """The source cannot read the node at all (driver missing, node unknown)."""


class TelemetrySource(Protocol):
    """Reads a node's GPU telemetry. ``since`` bounds the events returned."""

    def snapshot(self, node: str, since: datetime | None) -> NodeSnapshot: ...
