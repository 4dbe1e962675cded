"""Lemons on the simulated datacenter: the whole loop, the real store, the retire policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from compute.domain import EventKind
from compute.metrics import metrics_registry
from compute.runtime import Runtime
from compute.services.lemons import marks
from compute.services.rma import rma_report
from compute.testing import make_runtime
from compute.views import node_view, rma_report_view
from health.policy import Lifecycle

pytestmark = pytest.mark.integration


def _runtime(tmp_path: Path, action: str) -> Runtime:
    config = {
        "remediation": {"periodic_burn_in_days": 0},
        "topology": {"hold": "off"},
        "lemons": {"failures": 3, "window_days": 30, "action": action},
    }
    # The test is the technician: it repairs when the story needs it.
    rt = make_runtime(tmp_path, config=config, technician_repair_hours=0)
    rt.sweep()  # adopt busy nodes, burn in idle ones
    rt.sweep()  # idle ones pass and return
    return rt


@pytest.fixture
def retiring(tmp_path: Path) -> Iterator[Runtime]:
    rt = _runtime(tmp_path, "retire")
    yield rt
    rt.close()


def state(rt: Runtime, name: str) -> Lifecycle:
    node = rt.store.node(name)
    assert node is not None
    return node.state


def fail(rt: Runtime, name: str) -> None:
    """A fatal fault: the sweep drains the node."""
    assert rt.datacenter is not None
    rt.datacenter.inject(name, "xid79", gpu=1)
    rt.sweep()


def to_repair(rt: Runtime, name: str) -> None:
    """Burn-in fails on the drained node (the GPU is still gone) until it goes to repair."""
    for _ in range(6):
        if state(rt, name) is Lifecycle.REPAIR:
            return
        rt.sweep()
    assert state(rt, name) is Lifecycle.REPAIR


def back(rt: Runtime, name: str) -> None:
    """Fixed, handed back by the operator, through burn-in into service."""
    assert rt.datacenter is not None
    rt.datacenter.repair(name)
    rt.nodes.resume(name, actor="operator:test")
    rt.sweep()
    assert state(rt, name) is Lifecycle.IN_SERVICE


def test_a_node_failing_three_times_after_repair_is_a_lemon_and_retired(retiring: Runtime) -> None:
    rt = retiring
    lemon, twice = "gpu-003", "gpu-005"
    for name in (lemon, twice):  # a first fault is an ordinary fault
        fail(rt, name)
        to_repair(rt, name)
        back(rt, name)
    for _ in range(2):  # failing again twice after repair: not yet a lemon
        for name in (lemon, twice):
            fail(rt, name)
            to_repair(rt, name)
            back(rt, name)
    assert marks(rt.store) == {}
    fail(rt, lemon)  # the third time
    found = marks(rt.store)
    assert list(found) == [lemon]
    mark = found[lemon]
    assert mark.kind == EventKind.LEMON and mark.detail["action"] == "retire"
    assert len(mark.detail["failures"]) == 3
    assert "failed again after repair 3 times in 30 days" in mark.reason
    # Drained by the fault (the crash ended its jobs), so retired at once.
    assert state(rt, lemon) is Lifecycle.RETIRED
    assert state(rt, twice) is Lifecycle.IN_SERVICE
    actions = [a.action for a in rt.store.audit(target=lemon, limit=100)]
    assert "node.lemon" in actions and "node.retire" in actions
    # Once per episode: more sweeps add no mark.
    rt.sweep()
    rt.sweep()
    assert len(rt.store.events(node=lemon, kinds=[EventKind.LEMON], limit=10)) == 1
    # Shown: the node's view, its RMA report (its whole history), /metrics.
    node = rt.store.node(lemon)
    assert node is not None
    assert node_view(node, mark)["lemon"]["action"] == "retire"
    report = rma_report(rt.store, node)
    assert report.lemon is not None and "LEMON since" in report.as_text()
    kinds = [e.kind for e in report.history]
    assert kinds.count(EventKind.REPAIR) == 3 and kinds.count(EventKind.RESUME) >= 3
    assert kinds.count(EventKind.DRAIN) == 4 and EventKind.RETIRE in kinds
    assert rma_report_view(report)["lemon"]["failures"] == mark.detail["failures"]
    text = generate_latest(metrics_registry(rt)).decode()
    # Retired lemons are not counted: nothing left to act on.
    assert 'computectl_node_lemons{pool="training"} 0.0' in text


def test_rma_policy_flags_and_escalates_without_retiring(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, "rma")
    try:
        name = "gpu-004"
        fail(rt, name)
        to_repair(rt, name)
        back(rt, name)
        for _ in range(2):
            fail(rt, name)
            to_repair(rt, name)
            back(rt, name)
        fail(rt, name)
        assert list(marks(rt.store)) == [name]
        to_repair(rt, name)  # not retired: escalated only, its repair goes on
        assert state(rt, name) is Lifecycle.REPAIR
        node = rt.store.node(name)
        assert node is not None
        report = rma_report(rt.store, node)
        assert report.lemon is not None
        assert "lemon" in [e.kind for e in report.history]
        pool = node.pool
        text = generate_latest(metrics_registry(rt)).decode()
        assert f'computectl_node_lemons{{pool="{pool}"}} 1.0' in text
    finally:
        rt.close()
