"""PCIe link width and generation against the maximum the link supports."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite


class PcieCheck:
    name = "pcie"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        narrow: list[str] = []
        slow: list[str] = []
        bad: set[int] = set()
        expected_width = ctx.expectation.pcie_width
        for g in ctx.snapshot.gpus:
            want = expected_width or g.pcie_width_max
            if g.pcie_width_current < want:
                narrow.append(f"GPU {g.index} at x{g.pcie_width_current} (x{want} expected)")
                bad.add(g.index)
            # Idle GPUs drop their link generation to save power; judge it only under load.
            elif (
                g.utilisation_ratio >= ctx.thresholds.pcie_gen_busy_utilisation
                and g.pcie_gen_current < g.pcie_gen_max
            ):
                slow.append(
                    f"GPU {g.index} at gen{g.pcie_gen_current} of gen{g.pcie_gen_max} while busy"
                )
        values = {"pcie_links_narrow": len(narrow), "pcie_links_slow": len(slow)}
        if narrow:
            return verdict(
                self, ctx, Status.FAIL, "; ".join(narrow), values=values, gpus=tuple(sorted(bad))
            )
        if slow:
            return verdict(self, ctx, Status.WARN, "; ".join(slow), values=values)
        return verdict(self, ctx, Status.PASS, values=values)
