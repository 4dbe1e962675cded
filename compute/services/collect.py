"""Pulling passive check results and power from a telemetry source the control plane can read.

Real nodes push their results (`computectl node check --report`); the
simulated fleet is read here, through the same telemetry protocol and the
same checks the node would run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from compute.domain import Node
from health.checks.registry import passive_checks
from health.models import expected_nvlinks
from health.policy import Lifecycle
from health.result import CheckResult
from health.runner import run_passive
from health.telemetry import NodeExpectation, NodeSnapshot
from health.thresholds import Thresholds

CHECKED_STATES = (Lifecycle.IN_SERVICE, Lifecycle.DRAINING)


class BulkTelemetry(Protocol):
    def snapshots(self, nodes: dict[str, datetime | None]) -> Iterator[NodeSnapshot]: ...


@dataclass
class Collected:
    results: dict[str, list[CheckResult]]
    power_watts: dict[str, float]


def expectation(node: Node, uuids: Mapping[str, tuple[str, ...]]) -> NodeExpectation:
    return NodeExpectation(
        gpu_count=node.gpu_count,
        gpu_model=node.gpu_model,
        gpu_uuids=uuids.get(node.name, ()),
        nvlinks_per_gpu=expected_nvlinks(node.gpu_model, node.gpu_count),
        pcie_width=16,
    )


def collect(
    source: BulkTelemetry,
    nodes: Iterable[Node],
    uuids: Mapping[str, tuple[str, ...]],
    thresholds: Thresholds,
) -> Collected:
    by_name = {n.name: n for n in nodes}
    results: dict[str, list[CheckResult]] = {}
    power: dict[str, float] = {}
    checks = passive_checks()  # once for the fleet, not once a node
    for snap in source.snapshots({n.name: n.last_checked_at for n in by_name.values()}):
        node = by_name[snap.node]
        power[snap.node] = snap.power_watts
        if node.state in CHECKED_STATES:
            results[snap.node] = run_passive(
                snap, expectation(node, uuids), thresholds, node.health.last_values, checks
            )
    return Collected(results=results, power_watts=power)
