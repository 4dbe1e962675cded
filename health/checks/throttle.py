"""Clock event reasons: the hardware slowing a GPU down is a fault; a power cap is not."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite
from health.telemetry import (
    THROTTLE_HW_POWER_BRAKE,
    THROTTLE_HW_SLOWDOWN,
    THROTTLE_HW_THERMAL,
    THROTTLE_SW_THERMAL,
)

_HARDWARE = (THROTTLE_HW_SLOWDOWN, THROTTLE_HW_THERMAL, THROTTLE_HW_POWER_BRAKE)
_HARDWARE_SET = frozenset(_HARDWARE)


class ThrottleCheck:
    name = "throttle"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        hard: list[str] = []
        soft: list[str] = []
        bad: set[int] = set()
        for g in ctx.snapshot.gpus:
            # Most GPUs have no hardware reason: one set test, not a sorted list each.
            if not _HARDWARE_SET.isdisjoint(g.throttle_reasons):
                reasons = sorted(r for r in g.throttle_reasons if r in _HARDWARE)
                hard.append(f"GPU {g.index}: {', '.join(reasons)}")
                bad.add(g.index)
            elif THROTTLE_SW_THERMAL in g.throttle_reasons:
                soft.append(f"GPU {g.index}: {THROTTLE_SW_THERMAL}")
        values = {"gpus_hw_throttled": len(hard), "gpus_sw_thermal": len(soft)}
        if hard:
            return verdict(
                self, ctx, Status.FAIL, "; ".join(hard), values=values, gpus=tuple(sorted(bad))
            )
        if soft:
            return verdict(self, ctx, Status.WARN, "; ".join(soft), values=values)
        return verdict(self, ctx, Status.PASS, values=values)
