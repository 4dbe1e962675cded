"""InfiniBand/RoCE ports: every port up, and at the rate the fabric was built for."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite

_ACTIVE = "ACTIVE"
_LINK_UP = "LinkUp"


class InfinibandCheck:
    name = "infiniband"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        ports = ctx.snapshot.ib_ports
        if not ports:
            return verdict(self, ctx, Status.PASS, "no InfiniBand devices", values={"ib_ports": 0})
        want = ctx.expectation.ib_rate_gbps
        down: list[str] = []
        slow: list[str] = []
        for p in ports:
            if p.state != _ACTIVE or p.phys_state != _LINK_UP:
                down.append(f"{p.name} {p.state or '?'}/{p.phys_state or '?'}")
            # A port that trained at a lower rate (bad cable, wrong lane count) still
            # carries traffic, but slows every collective that crosses it.
            elif want is not None and p.rate_gbps < want:
                slow.append(f"{p.name} at {p.rate_gbps:g} Gb/s ({want:g} expected)")
        values = {
            "ib_ports": len(ports),
            "ib_ports_down": len(down),
            "ib_ports_slow": len(slow),
            "ib_rate_min_gbps": min(p.rate_gbps for p in ports),
        }
        if down or slow:
            return verdict(self, ctx, Status.FAIL, "; ".join(down + slow), values=values)
        return verdict(self, ctx, Status.PASS, values=values)
