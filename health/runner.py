"""Runs the suites on one node: passive checks, and burn-in with its summary verdict."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from health.checks.base import Check, CheckContext
from health.checks.registry import burnin_checks, passive_checks
from health.checks.sdc import SdcCheck
from health.floors import Floors
from health.probe import ActiveProbe
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite, Value
from health.telemetry import NodeExpectation, NodeSnapshot
from health.thresholds import Thresholds

BURNIN_VERSION = "1"


def run_checks(
    checks: Sequence[Check],
    snapshot: NodeSnapshot,
    expectation: NodeExpectation,
    thresholds: Thresholds,
    previous: Mapping[str, Mapping[str, Value]] | None = None,
    probe: ActiveProbe | None = None,
    floors: Floors | None = None,
) -> list[CheckResult]:
    prev = previous or {}
    none: Mapping[str, Value] = {}
    # Positional, in CheckContext's field order (one context per check, 92,160 a sweep of
    # 10,240 nodes: keywords cost a third more).
    return [
        check.run(
            CheckContext(
                snapshot, expectation, thresholds, prev.get(check.name, none), probe, floors
            )
        )
        for check in checks
    ]


def run_passive(
    snapshot: NodeSnapshot,
    expectation: NodeExpectation,
    thresholds: Thresholds,
    previous: Mapping[str, Mapping[str, Value]] | None = None,
    checks: Sequence[Check] | None = None,
) -> list[CheckResult]:
    """``checks``: the passive checks, made once by a caller that runs them on many nodes."""
    suite = passive_checks() if checks is None else checks
    return run_checks(suite, snapshot, expectation, thresholds, previous)


def run_burn_in(
    snapshot: NodeSnapshot,
    expectation: NodeExpectation,
    thresholds: Thresholds,
    probe: ActiveProbe,
    floors: Floors | None,
    *,
    dcgm: Callable[[], CheckResult] | None = None,
    sdc: SdcCheck | None = None,
) -> list[CheckResult]:
    """The whole burn-in: passive checks, DCGM's diagnostic (``dcgm``, where the node check
    runs it), the workloads, and one summary result. ``sdc``: the SDC check with the node's
    memory and the fleet's reference.

    The summary (check ``burnin``) is what the control plane waits for: it
    passes only if no check of the suite failed.
    """
    results = [_as_burnin(r) for r in run_passive(snapshot, expectation, thresholds)]
    if dcgm is not None:
        # Before our workloads: DCGM's memory and stress tests want the GPUs to themselves,
        # and after them this process would still hold a CUDA context on every GPU.
        results.append(dcgm())
    results += run_checks(
        burnin_checks(sdc), snapshot, expectation, thresholds, probe=probe, floors=floors
    )
    results.append(summarise(snapshot.node, results, snapshot.at))
    return results


def summarise(node: str, results: Sequence[CheckResult], at: datetime) -> CheckResult:
    """Fails when any check failed; fatal when any failure was (a GPU that corrupts data
    silently needs no second burn-in to be believed)."""
    failed = [r for r in results if r.status is Status.FAIL]
    evidence = "; ".join(f"{r.check}: {r.evidence}" for r in failed)
    return CheckResult(
        node=node,
        check=BURNIN_SUMMARY,
        version=BURNIN_VERSION,
        status=Status.FAIL if failed else Status.PASS,
        at=at,
        suite=Suite.BURNIN,
        fatal=any(r.fatal for r in failed),
        evidence=evidence,
        values={"checks": len(results), "checks_failed": len(failed)},
        gpus=tuple(sorted({g for r in failed for g in r.gpus})),
    )


def _as_burnin(r: CheckResult) -> CheckResult:
    return CheckResult(
        node=r.node,
        check=r.check,
        version=r.version,
        status=r.status,
        at=r.at,
        suite=Suite.BURNIN,
        fatal=r.fatal,
        evidence=r.evidence,
        values=r.values,
        gpus=r.gpus,
    )
