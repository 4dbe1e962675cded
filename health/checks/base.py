"""The check protocol and what a check gets to judge with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from health.floors import Floors
from health.probe import ActiveProbe
from health.result import CheckResult, Status, Suite, Value
from health.telemetry import NodeExpectation, NodeSnapshot
from health.thresholds import Thresholds


@dataclass(frozen=True, slots=True)
class CheckContext:
    snapshot: NodeSnapshot
    expectation: NodeExpectation
    thresholds: Thresholds = field(default_factory=Thresholds)
    # This check's values from its previous run on the node, for counters that must grow.
    previous: Mapping[str, Value] = field(default_factory=dict)
    # Burn-in only: what runs the workloads, and the floors for this GPU model.
    probe: ActiveProbe | None = None
    floors: Floors | None = None

    @property
    def node(self) -> str:
        return self.snapshot.node

    @property
    def at(self) -> datetime:
        return self.snapshot.at


class Check(Protocol):
    name: str
    version: str
    suite: Suite

    def run(self, ctx: CheckContext) -> CheckResult: ...


def verdict(
    check: Check,
    ctx: CheckContext,
    status: Status,
    evidence: str = "",
    *,
    fatal: bool = False,
    values: Mapping[str, Value] | None = None,
    gpus: tuple[int, ...] = (),
) -> CheckResult:
    snapshot = ctx.snapshot
    # Positional, in CheckResult's field order: a sweep of 10,240 nodes makes 92,160 of
    # these, and keywords cost a third more.
    return CheckResult(
        snapshot.node,
        check.name,
        check.version,
        status,
        snapshot.at,
        check.suite,
        fatal and status is Status.FAIL,
        evidence,
        values if values is not None else {},
        gpus,
    )


def gpu_list(indices: list[int]) -> str:
    return ",".join(str(i) for i in indices)
