"""Uncorrectable ECC errors, retired pages and row remapping."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite


class EccCheck:
    name = "ecc"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        failures: list[str] = []
        warnings: list[str] = []
        fatal = False
        gpus: set[int] = set()
        volatile = aggregate = 0
        for g in ctx.snapshot.gpus:
            volatile += g.ecc_volatile_uncorrected
            aggregate += g.ecc_aggregate_uncorrected
            if g.remapped_rows_failure:
                # The remapper ran out of spare rows: only a replacement helps.
                failures.append(f"GPU {g.index}: row remapping failed")
                fatal = True
                gpus.add(g.index)
            if g.remapped_rows_pending or g.retired_pages_pending:
                failures.append(f"GPU {g.index}: row remap pending, GPU reset required")
                gpus.add(g.index)
            if g.ecc_volatile_uncorrected:
                failures.append(
                    f"GPU {g.index}: {g.ecc_volatile_uncorrected} uncorrectable ECC errors "
                    "since last reset"
                )
                gpus.add(g.index)
            elif g.ecc_aggregate_uncorrected:
                warnings.append(
                    f"GPU {g.index}: {g.ecc_aggregate_uncorrected} uncorrectable ECC errors "
                    "in its lifetime"
                )
        values = {"ecc_volatile_uncorrected": volatile, "ecc_aggregate_uncorrected": aggregate}
        if failures:
            return verdict(
                self,
                ctx,
                Status.FAIL,
                "; ".join(failures),
                fatal=fatal,
                values=values,
                gpus=tuple(sorted(gpus)),
            )
        if warnings:
            return verdict(self, ctx, Status.WARN, "; ".join(warnings), values=values)
        return verdict(self, ctx, Status.PASS, values=values)
