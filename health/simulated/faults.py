"""The faults the simulated fleet injects, with the signatures real nodes show."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    XID79_FELL_OFF_BUS = "xid79"
    XID48_DBE = "xid48"
    XID94_CONTAINED_ECC = "xid94"
    XID95_UNCONTAINED_ECC = "xid95"
    ROW_REMAP_PENDING = "row_remap_pending"
    ROW_REMAP_FAILURE = "row_remap_failure"
    NVLINK_DOWN = "nvlink_down"
    PCIE_X8 = "pcie_x8"
    THERMAL_THROTTLE = "thermal_throttle"
    POWER_BRAKE = "power_brake"
    SLOW_GEMM = "slow_gemm"
    LOW_NCCL = "low_nccl"
    IB_PORT_DOWN = "ib_port_down"
    # A GPU that computes a wrong bit without any error: only a known-answer check sees it.
    SDC_BITFLIP = "sdc_bitflip"


class Clears(StrEnum):
    RESET = "reset"  # a GPU reset (burn-in starts with one) clears it
    REPAIR = "repair"  # hardware work: only a repair clears it
    TIME = "time"  # transient: passes by itself


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: FaultKind
    weight: float  # share of injected faults
    clears: Clears
    kills_jobs: bool  # running jobs on the node crash when it happens
    duration_seconds: float = 0.0  # for transient faults


FAULTS: dict[FaultKind, FaultSpec] = {
    f.kind: f
    for f in (
        FaultSpec(FaultKind.XID79_FELL_OFF_BUS, 0.10, Clears.REPAIR, kills_jobs=True),
        FaultSpec(FaultKind.XID48_DBE, 0.08, Clears.RESET, kills_jobs=True),
        FaultSpec(FaultKind.XID94_CONTAINED_ECC, 0.10, Clears.RESET, kills_jobs=False),
        FaultSpec(FaultKind.XID95_UNCONTAINED_ECC, 0.06, Clears.RESET, kills_jobs=True),
        FaultSpec(FaultKind.ROW_REMAP_PENDING, 0.10, Clears.RESET, kills_jobs=False),
        FaultSpec(FaultKind.ROW_REMAP_FAILURE, 0.04, Clears.REPAIR, kills_jobs=True),
        FaultSpec(FaultKind.NVLINK_DOWN, 0.10, Clears.REPAIR, kills_jobs=False),
        FaultSpec(FaultKind.PCIE_X8, 0.08, Clears.REPAIR, kills_jobs=False),
        FaultSpec(
            FaultKind.THERMAL_THROTTLE,
            0.12,
            Clears.TIME,
            kills_jobs=False,
            duration_seconds=3 * 3600,
        ),
        FaultSpec(
            FaultKind.POWER_BRAKE, 0.06, Clears.TIME, kills_jobs=False, duration_seconds=2 * 3600
        ),
        FaultSpec(FaultKind.SLOW_GEMM, 0.08, Clears.REPAIR, kills_jobs=False),
        FaultSpec(FaultKind.LOW_NCCL, 0.08, Clears.REPAIR, kills_jobs=False),
        FaultSpec(FaultKind.IB_PORT_DOWN, 0.06, Clears.REPAIR, kills_jobs=False),
        # Weight 0: never drawn at random unless [simulation] fault_weights names it (fleets
        # report it at rates far below the others), so seeded fleets keep their histories;
        # injected on purpose (`computectl fleet inject`, tests, acceptance runs).
        FaultSpec(FaultKind.SDC_BITFLIP, 0.0, Clears.REPAIR, kills_jobs=False),
    )
}
