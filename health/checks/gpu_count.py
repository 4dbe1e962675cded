"""GPU count and identity against the node's inventory."""

from __future__ import annotations

from health.checks.base import CheckContext, gpu_list, verdict
from health.result import CheckResult, Status, Suite


class GpuCountCheck:
    """A GPU that fell off the bus is a missing UUID, not only a missing index."""

    name = "gpu_count"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        seen = ctx.snapshot.gpus
        expected = ctx.expectation
        values = {"gpus_visible": len(seen), "gpus_expected": expected.gpu_count}
        if expected.gpu_uuids:
            seen_uuids = {g.uuid for g in seen}
            missing = [u for u in expected.gpu_uuids if u not in seen_uuids]
            if missing:
                return verdict(
                    self,
                    ctx,
                    Status.FAIL,
                    f"{len(missing)} of {len(expected.gpu_uuids)} GPUs missing: "
                    + ", ".join(missing),
                    fatal=True,
                    values=values,
                    gpus=tuple(i for i, u in enumerate(expected.gpu_uuids) if u in missing),
                )
        if len(seen) < expected.gpu_count:
            present = {g.index for g in seen}
            absent = [i for i in range(expected.gpu_count) if i not in present]
            return verdict(
                self,
                ctx,
                Status.FAIL,
                f"{len(seen)} of {expected.gpu_count} GPUs visible "
                f"(missing index {gpu_list(absent)})",
                fatal=True,
                values=values,
                gpus=tuple(absent),
            )
        if expected.gpu_uuids:
            inventory = set(expected.gpu_uuids)
            unknown = [g for g in seen if g.uuid not in inventory]
            if unknown:
                return verdict(
                    self,
                    ctx,
                    Status.WARN,
                    "GPUs not in inventory (replaced?): " + ", ".join(g.uuid for g in unknown),
                    values=values,
                    gpus=tuple(g.index for g in unknown),
                )
        if expected.gpu_model:
            wrong = [g for g in seen if g.model != expected.gpu_model]
            if wrong:
                return verdict(
                    self,
                    ctx,
                    Status.FAIL,
                    f"GPU model {wrong[0].model} where {expected.gpu_model} is expected",
                    values=values,
                    gpus=tuple(g.index for g in wrong),
                )
        return verdict(self, ctx, Status.PASS, values=values)
