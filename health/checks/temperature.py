"""GPU temperature against limits, and power against the GPU's power limit."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite


class TemperatureCheck:
    name = "temperature"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        t = ctx.thresholds
        hot: list[str] = []
        warm: list[str] = []
        bad: set[int] = set()
        hottest = 0.0
        for g in ctx.snapshot.gpus:
            hottest = max(hottest, g.temperature_celsius)
            fail_at = min(t.temperature_fail_celsius, g.temperature_slowdown_celsius or 1e9)
            if g.temperature_celsius >= fail_at:
                hot.append(
                    f"GPU {g.index} at {g.temperature_celsius:.0f} C (limit {fail_at:.0f} C)"
                )
                bad.add(g.index)
            elif g.temperature_celsius >= t.temperature_warn_celsius:
                warm.append(f"GPU {g.index} at {g.temperature_celsius:.0f} C")
            elif (
                g.power_limit_watts
                and g.power_watts > g.power_limit_watts * t.power_over_limit_ratio
            ):
                warm.append(
                    f"GPU {g.index} draws {g.power_watts:.0f} W over its "
                    f"{g.power_limit_watts:.0f} W limit"
                )
        values = {"temperature_max_celsius": round(hottest, 1)}
        if hot:
            return verdict(
                self, ctx, Status.FAIL, "; ".join(hot), values=values, gpus=tuple(sorted(bad))
            )
        if warm:
            return verdict(self, ctx, Status.WARN, "; ".join(warm), values=values)
        return verdict(self, ctx, Status.PASS, values=values)
