"""The suites: which checks run passively and which make up burn-in."""

from __future__ import annotations

from health.checks.base import Check
from health.checks.burnin import GemmCheck, HbmCheck, NcclCheck
from health.checks.ecc import EccCheck
from health.checks.gpu_count import GpuCountCheck
from health.checks.infiniband import InfinibandCheck
from health.checks.nvlink import NvlinkCheck
from health.checks.pcie import PcieCheck
from health.checks.sdc import SdcCheck
from health.checks.temperature import TemperatureCheck
from health.checks.throttle import ThrottleCheck
from health.checks.versions import VersionsCheck
from health.checks.xid_events import XidCheck


def passive_checks() -> tuple[Check, ...]:
    return (
        GpuCountCheck(),
        XidCheck(),
        EccCheck(),
        NvlinkCheck(),
        PcieCheck(),
        ThrottleCheck(),
        TemperatureCheck(),
        InfinibandCheck(),
        VersionsCheck(),
    )


def burnin_checks(sdc: SdcCheck | None = None) -> tuple[Check, ...]:
    """``sdc``: the SDC check with this node's memory and the fleet's reference (the node
    check makes it); without, it compares across the node's GPUs only."""
    return (GemmCheck(), HbmCheck(), NcclCheck(), sdc or SdcCheck())
