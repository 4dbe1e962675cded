"""Driver, CUDA and VBIOS versions: reported by every node, compared across its pool."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite


class VersionsCheck:
    """Reports the versions; a node whose GPUs disagree among themselves warns.

    Whether a node differs from the rest of its pool is judged by the control plane
    (health.consistency), which sees every node.
    """

    name = "versions"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        snap = ctx.snapshot
        vbios = sorted({g.vbios_version for g in snap.gpus if g.vbios_version})
        values = {
            "driver_version": snap.driver_version,
            "cuda_version": snap.cuda_version,
            "vbios_versions": ",".join(vbios),
        }
        if len(vbios) > 1:
            return verdict(
                self,
                ctx,
                Status.WARN,
                f"GPUs run different VBIOS versions: {', '.join(vbios)}",
                values=values,
            )
        return verdict(
            self,
            ctx,
            Status.PASS,
            "" if snap.driver_version else "driver version unknown",
            values=values,
        )
