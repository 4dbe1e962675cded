"""NVLink: every link up, the GPUs' NVLink fabric (Grace Blackwell) registered and healthy,
and error counters not growing fast.

The node's NVLink domain (health/nvlink_domain.py) goes into the values, so the node's
record keeps it (the policy keeps this check's last values) and the control plane can see
a domain's nodes together (compute/services/nvlink_domains.py).
"""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.nvlink_domain import fabric_of, node_domain
from health.result import CheckResult, Status, Suite


class NvlinkCheck:
    name = "nvlink"
    version = "2"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        gpus = ctx.snapshot.gpus
        crc = sum(g.nvlink_crc_errors for g in gpus)
        replay = sum(g.nvlink_replay_errors for g in gpus)
        values: dict[str, int | str] = {"nvlink_crc_errors": crc, "nvlink_replay_errors": replay}
        fabric = fabric_of(ctx.snapshot)
        domain = node_domain(fabric)
        if fabric:
            values["nvlink_domain"] = domain
            values["fabric_unhealthy_gpus"] = sum(1 for f in fabric if not f.healthy)
        expected = ctx.expectation.nvlinks_per_gpu
        down: list[str] = []
        bad: set[int] = set()
        for g in gpus:
            if g.nvlink_links_down:
                down.append(f"GPU {g.index} link {','.join(map(str, g.nvlink_links_down))} down")
                bad.add(g.index)
            elif expected is not None and g.nvlink_links_total < expected:
                down.append(f"GPU {g.index}: {g.nvlink_links_total} of {expected} links present")
                bad.add(g.index)
        # Registration still under way (a GPU reset, the fabric manager starting) is not a
        # fault yet: it warns below, and fails only once it completed badly.
        settling: list[str] = []
        for f in fabric:
            if f.state == "completed" and not f.healthy:
                down.append(f.problem())
                bad.add(f.index)
            elif not f.healthy:
                settling.append(f.problem())
            elif f.domain and f.domain != domain:
                down.append(f"GPU {f.index}: in NVLink domain {f.domain}, the node's is {domain}")
                bad.add(f.index)
        if down:
            return verdict(
                self, ctx, Status.FAIL, "; ".join(down), values=values, gpus=tuple(sorted(bad))
            )
        if settling:
            return verdict(self, ctx, Status.WARN, "; ".join(settling), values=values)
        growth = 0
        prev_crc, prev_replay = (
            ctx.previous.get("nvlink_crc_errors"),
            ctx.previous.get("nvlink_replay_errors"),
        )
        if isinstance(prev_crc, int) and isinstance(prev_replay, int):
            growth = max(0, crc - prev_crc) + max(0, replay - prev_replay)
        if growth >= ctx.thresholds.nvlink_error_growth_warn:
            return verdict(
                self,
                ctx,
                Status.WARN,
                f"NVLink CRC/replay errors grew by {growth} since the last check",
                values=values,
            )
        return verdict(self, ctx, Status.PASS, values=values)
