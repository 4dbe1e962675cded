"""NVLink: every link up, and error counters not growing fast."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite


class NvlinkCheck:
    name = "nvlink"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        gpus = ctx.snapshot.gpus
        crc = sum(g.nvlink_crc_errors for g in gpus)
        replay = sum(g.nvlink_replay_errors for g in gpus)
        values = {"nvlink_crc_errors": crc, "nvlink_replay_errors": replay}
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
        if down:
            return verdict(
                self, ctx, Status.FAIL, "; ".join(down), values=values, gpus=tuple(sorted(bad))
            )
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
