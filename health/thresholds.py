"""Limits the passive checks judge against; the control plane fills them from its settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    temperature_warn_celsius: float = 83.0
    temperature_fail_celsius: float = 87.0
    # A GPU drawing more than this share of its limit is reported (sensor or limit fault).
    power_over_limit_ratio: float = 1.05
    # NVLink CRC/replay errors growing by at least this much since the last check warn.
    nvlink_error_growth_warn: int = 100
    # PCIe generation is only judged while the GPU is busy: idle GPUs lower it to save power.
    pcie_gen_busy_utilisation: float = 0.5
    # Burn-in: a GPU below this share of its node's median is reported even without a floor.
    burnin_relative_floor: float = 0.9
