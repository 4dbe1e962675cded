"""A posted result and a running sweep, interleaved: nothing is lost, nothing done twice, and a
posted fatal result is acted on at once (the simulated datacenter, the real SQLite store)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.domain import AUTOMATION, EventKind
from compute.runtime import Runtime
from compute.services.sweep import SweepReport
from compute.testing import make_runtime, result
from health.policy import Lifecycle, drain_budget

pytestmark = pytest.mark.integration

CONFIG = {"remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"}}
NODE = "gpu-003"


@pytest.fixture(params=["sqlite", "postgresql"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    config: dict[str, Any] = dict(CONFIG)
    if request.param == "postgresql":
        config["database_url"] = request.getfixturevalue("clean_postgres")
    runtime = make_runtime(tmp_path, config)
    runtime.sweep()
    yield runtime
    runtime.close()


@contextmanager
def sweep_paused_in_listing(rt: Runtime) -> Iterator[Callable[[], SweepReport]]:
    """A sweep in its own thread, held while it asks the workload manager for its nodes (the
    seconds between its read and its write); the caller does what it likes, then calls
    the function given to let the sweep go on and get its report."""
    listing, go = threading.Event(), threading.Event()
    backend = next(b for b, _pools in rt.backends.groups())
    original = backend.list_nodes

    def held() -> Any:
        out = original()
        listing.set()
        assert go.wait(30)
        return out

    backend.list_nodes = held  # type: ignore[method-assign]
    reports: list[SweepReport] = []
    sweep = threading.Thread(target=lambda: reports.append(rt.sweep()))
    sweep.start()
    assert listing.wait(30)

    def finish() -> SweepReport:
        go.set()
        sweep.join(60)
        backend.list_nodes = original  # type: ignore[method-assign]
        return reports[0]

    try:
        yield finish
    finally:
        go.set()
        sweep.join(60)
        backend.list_nodes = original  # type: ignore[method-assign]


def post_fatal(rt: Runtime, name: str = NODE) -> None:
    rt.ingest.ingest(name, [result(name, "xid", fatal=True, at=rt.clock.now(), evidence="XID 79")])


def drains(rt: Runtime, name: str = NODE) -> list[Any]:
    return [e for e in rt.store.events(node=name, limit=100) if e.kind == EventKind.DRAIN]


def backend_reason(rt: Runtime, name: str = NODE) -> str:
    assert rt.datacenter is not None
    with rt.datacenter.cluster_access() as c:
        return str(c.nodes[name].reason)


def test_a_fatal_result_posted_during_a_sweep_is_not_lost(rt: Runtime) -> None:
    with sweep_paused_in_listing(rt) as finish:
        post_fatal(rt)
        report = finish()
    node = rt.store.node(NODE)
    assert node is not None and node.state in (Lifecycle.DRAINING, Lifecycle.DRAINED)
    assert node.drain_reason == "computectl: xid: XID 79" == backend_reason(rt)
    assert [a["node"] for a in report.actions] == [NODE]
    assert len(drains(rt)) == 1 and node.attention_at is None


def test_attention_drains_at_once_while_a_sweep_runs_and_the_sweep_does_not_again(
    rt: Runtime,
) -> None:
    with sweep_paused_in_listing(rt) as finish:
        post_fatal(rt)
        assert rt.attention.is_set()
        assert rt.act_on_attention() == 1  # not waiting for the sweep
        assert backend_reason(rt) == "computectl: xid: XID 79"
        report = finish()
    assert report.actions == []
    node = rt.store.node(NODE)
    assert node is not None and node.state in (Lifecycle.DRAINING, Lifecycle.DRAINED)
    assert node.attention_at is None and node.drain_actor == AUTOMATION
    [drain] = drains(rt)
    detected = datetime.fromisoformat(drain.detail["detected_at"])
    assert detected <= drain.at and drain.detail["check"] == "xid"
    assert len([a for a in rt.store.audit(NODE) if a.action == "node.drain"]) == 1


def test_an_operator_drain_made_during_a_sweep_is_not_undone(rt: Runtime) -> None:
    with sweep_paused_in_listing(rt) as finish:
        rt.nodes.drain(NODE, "bad fan", actor="alice")
        finish()
    rt.sweep()
    node = rt.store.node(NODE)
    assert node is not None and node.state in (Lifecycle.DRAINING, Lifecycle.DRAINED)
    assert node.drain_actor == "alice" and not node.automation_drain
    assert backend_reason(rt) == node.drain_reason == "computectl: operator: bad fan"
    kinds = {e.kind for e in rt.store.events(node=NODE, limit=100)}
    assert EventKind.EXTERNAL_RESUME not in kinds


def test_a_posted_fatal_result_drains_through_the_api_before_any_sweep(rt: Runtime) -> None:
    report = [
        {
            "check": "xid",
            "version": "1",
            "status": "fail",
            "fatal": True,
            "evidence": "XID 79 on GPU 5",
            "at": rt.clock.now().isoformat(),
        }
    ]
    with TestClient(create_app(rt), headers=operator_headers(rt.store)) as client:
        assert client.post(f"/api/v1/nodes/{NODE}/health", json=report).status_code == 202
        assert rt.attention.is_set()
        rt.act_on_attention()
        node = client.get(f"/api/v1/nodes/{NODE}").json()
    assert node["state"] in ("draining", "drained")
    assert backend_reason(rt) == "computectl: xid: XID 79 on GPU 5"


class NotLeading:
    def acting(self) -> bool:
        return False


def test_a_process_that_does_not_lead_leaves_attention_for_the_one_that_does(
    rt: Runtime,
) -> None:
    rt.leadership = NotLeading()
    post_fatal(rt)
    assert rt.act_on_attention() == 0
    assert "acting stopped" in " ".join(rt.sweep().errors)
    node = rt.store.node(NODE)
    assert node is not None and node.state is Lifecycle.IN_SERVICE
    assert node.attention_at is not None and backend_reason(rt) == ""
    rt.leadership = None
    assert rt.act_on_attention() == 1


# -- the drain budget, whatever the order of results, sweeps and leaders ---------------------

Step = tuple[str, int]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["post", "attend", "sweep", "sweep_with_posts", "lead"]), st.integers(0, 15)
    ),
    min_size=1,
    max_size=12,
)


def within_budget(rt: Runtime) -> None:
    nodes = [n for n in rt.store.nodes() if n.state is not Lifecycle.RETIRED]
    for pool in {n.pool for n in nodes}:
        members = [n for n in nodes if n.pool == pool]
        out = [n.name for n in members if n.automation_drain and not n.health.burn_in_voluntary]
        assert len(out) <= drain_budget(len(members), rt.policy), (pool, out)


class Leading:
    """A leadership double: a step may take it away and give it back."""

    def __init__(self) -> None:
        self.on = True

    def acting(self) -> bool:
        return self.on


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_no_sequence_of_results_sweeps_and_leaders_exceeds_a_pools_drain_budget(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Step]
) -> None:
    rt = make_runtime(
        tmp_path_factory.mktemp("budget"), CONFIG, racks=2, nodes_per_rack=8, inference_racks=0
    )
    leading = Leading()
    rt.leadership = leading
    names = sorted(n.name for n in rt.store.nodes()) or [f"gpu-{i:03d}" for i in range(1, 17)]
    try:
        rt.sweep()
        names = sorted(n.name for n in rt.store.nodes())
        for kind, i in steps:
            name = names[i % len(names)]
            if kind == "post":
                post_fatal(rt, name)
            elif kind == "attend":
                rt.act_on_attention()
            elif kind == "sweep":
                rt.sweep()
            elif kind == "lead":
                leading.on = not leading.on
            else:
                with sweep_paused_in_listing(rt) as finish:
                    for k in range(i % 4 + 1):
                        post_fatal(rt, names[(i + k) % len(names)])
                        rt.act_on_attention()
                    finish()
            within_budget(rt)
    finally:
        rt.close()
