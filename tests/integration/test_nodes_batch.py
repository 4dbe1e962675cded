"""Draining and resuming many nodes at once (names and Slurm hostlists): one backend call per
backend, one event and audit entry per node, refusals per node (CLI exit 4, or 2 if none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.cli.main import main
from compute.domain import EventKind
from compute.runtime import Runtime
from compute.testing import make_runtime
from health.policy import DrainOwner, Lifecycle
from scheduler.protocol import BatchResult

pytestmark = pytest.mark.integration

OPERATOR = "operator:alice"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path / "data")
    runtime.sweep()
    yield runtime
    runtime.close()


def count_calls(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Every backend call drain/resume makes, single or batch, as (method, nodes)."""
    calls: list[tuple[str, list[str]]] = []
    backend = rt.backends.for_pool("training")
    for method in ("drain", "resume", "drain_many", "resume_many"):
        real = getattr(backend, method)

        def spy(nodes: Any, *args: Any, _real: Any = real, _m: str = method) -> Any:
            calls.append((_m, [nodes] if isinstance(nodes, str) else list(nodes)))
            return _real(nodes, *args)

        monkeypatch.setattr(backend, method, spy)
    return calls


def test_a_hostlist_is_drained_and_resumed_with_one_backend_call(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_calls(rt, monkeypatch)
    names = [f"gpu-{i:03d}" for i in range(1, 17)]
    batch = rt.nodes.drain_many(["gpu-[001-016]"], "rack swap", actor=OPERATOR, now_mode=True)
    assert [n.name for n in batch.done] == names and not batch.refused
    assert calls == [("drain_many", names)]
    for name in names:
        node = rt.store.node(name)
        assert node is not None and node.state is Lifecycle.DRAINED
        assert (node.drain_owner, node.drain_actor) == (DrainOwner.COMPUTECTL, OPERATOR)
        kinds = [e.kind for e in rt.store.events(node=name, limit=5)]
        assert kinds.count(EventKind.DRAIN) == 1 and kinds.count(EventKind.DRAINED) == 1
    audit = [a for a in rt.store.audit(limit=100) if a.action == "node.drain"]
    assert sorted(a.target for a in audit) == names
    calls.clear()
    batch = rt.nodes.resume_many(names, actor=OPERATOR, skip_burn_in=True)
    assert len(batch.done) == 16 and calls == [("resume_many", names)]
    assert {n.state for n in batch.done} == {Lifecycle.IN_SERVICE}


def test_resuming_through_burn_in_drains_all_with_one_call(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt.nodes.drain_many(["gpu-[001-004]"], "x", actor=OPERATOR, now_mode=True)
    calls = count_calls(rt, monkeypatch)
    batch = rt.nodes.resume_many(["gpu-[001-004]"], actor=OPERATOR)
    assert {n.state for n in batch.done} == {Lifecycle.BURN_IN} and len(batch.done) == 4
    assert [c[0] for c in calls] == ["drain_many"]


def test_a_refused_node_stops_none_of_the_others(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt.nodes.drain("gpu-002", "first", actor=OPERATOR, now_mode=True)
    rt.nodes.retire("gpu-002", actor=OPERATOR)
    calls = count_calls(rt, monkeypatch)
    batch = rt.nodes.drain_many(["gpu-[001-003]", "gpu-999"], "x", actor=OPERATOR)
    assert [n.name for n in batch.done] == ["gpu-001", "gpu-003"]
    assert set(batch.refused) == {"gpu-002", "gpu-999"}
    assert calls == [("drain_many", ["gpu-001", "gpu-003"])]


def test_a_node_the_backend_failed_on_is_reported_and_not_recorded(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.errors import Unreachable

    backend = rt.backends.for_pool("training")
    real = backend.drain_many

    def half(nodes: Any, reason: str, mode: Any = "drain") -> BatchResult:
        real([n for n in nodes if n != "gpu-002"], reason, mode)
        return BatchResult(failed={"gpu-002": Unreachable("gone")})

    monkeypatch.setattr(backend, "drain_many", half)
    batch = rt.nodes.drain_many(["gpu-[001-003]"], "x", actor=OPERATOR)
    assert [n.name for n in batch.done] == ["gpu-001", "gpu-003"]
    assert "gone" in str(batch.refused["gpu-002"])
    node = rt.store.node("gpu-002")
    assert node is not None and node.state is Lifecycle.IN_SERVICE
    kinds = [e.kind for e in rt.store.events(node="gpu-002", limit=5)]
    assert EventKind.ACTION_FAILED in kinds and EventKind.DRAIN not in kinds


def cli(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(["--data-dir", str(data_dir), *args])
    out = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def test_cli_exit_codes_and_one_line_per_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    make_runtime(data).close()
    code, out, err = cli(data, capsys, "sweep")
    code, out, err = cli(data, capsys, "nodes", "drain", "gpu-[001-003]", "--reason", "r", "--now")
    assert code == 0 and len(out.splitlines()) == 3 and not err
    # gpu-999 is unknown: some done, some refused.
    code, out, err = cli(data, capsys, "nodes", "drain", "gpu-004", "gpu-999", "--reason", "r")
    assert code == 4 and out.startswith("gpu-004: ")
    assert err.splitlines() == [
        "error: unknown node 'gpu-999'",
        "error: 1 of 2 nodes not drained: gpu-999",
    ]
    code, out, err = cli(data, capsys, "nodes", "resume", "gpu-998", "gpu-999")
    assert code == 2 and not out and len(err.splitlines()) == 1
    code, out, err = cli(data, capsys, "nodes", "drain", "gpu-001", "--reason", "r")
    assert (code, err) == (2, "error: gpu-001 is drained, not in service; nothing to drain\n")
    # One node: the answer is the node as before, an object, not a list.
    code, out, err = cli(data, capsys, "nodes", "resume", "gpu-001", "--skip-burn-in", "-o", "json")
    assert code == 0 and json.loads(out)["state"] == "in_service"
    code, out, err = cli(
        data, capsys, "nodes", "resume", "gpu-[002-003]", "--skip-burn-in", "-o", "json"
    )
    assert code == 0 and [n["name"] for n in json.loads(out)] == ["gpu-002", "gpu-003"]
    code, out, err = cli(data, capsys, "nodes", "drain", "gpu-[a-b]", "--reason", "r")
    assert code == 2 and err.startswith("error: 'gpu-[a-b]': ")
    code, out, err = cli(data, capsys, "nodes", "drain", "gpu-[1-99999999]", "--reason", "r")
    assert code == 2 and "more than" in err


def test_api_batch_drain_and_resume(rt: Runtime) -> None:
    with TestClient(create_app(rt), headers=operator_headers(rt.store)) as client:
        r = client.post(
            "/api/v1/nodes/drain",
            json={"nodes": ["gpu-[001-002]", "gpu-999"], "reason": "swap", "now": True},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert [n["name"] for n in body["nodes"]] == ["gpu-001", "gpu-002"]
        assert body["nodes"][0]["left_running"] == []
        assert body["refused"] == [
            {"node": "gpu-999", "code": "not_found", "detail": "unknown node 'gpu-999'"}
        ]
        r = client.post("/api/v1/nodes/resume", json={"nodes": ["gpu-998", "gpu-999"]})
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        r = client.post(
            "/api/v1/nodes/resume", json={"nodes": ["gpu-[001-002]"], "skip_burn_in": True}
        )
        assert r.status_code == 200 and not r.json()["refused"]
        assert {n["state"] for n in r.json()["nodes"]} == {"in_service"}
        assert (
            client.post("/api/v1/nodes/drain", json={"nodes": [], "reason": "x"}).status_code == 422
        )


def test_a_node_drained_in_a_batch_is_recorded_as_one_drained_alone(rt: Runtime) -> None:
    alone = rt.nodes.drain("gpu-001", "swap", actor=OPERATOR)
    [batched] = rt.nodes.drain_many(["gpu-002"], "swap", actor=OPERATOR).done

    def shape(name: str) -> tuple[Any, ...]:
        node = rt.store.node(name)
        assert node is not None
        events = rt.store.events(node=name, limit=5)
        audit = [a for a in rt.store.audit(target=name) if a.action == "node.drain"]
        lifecycle = (
            node.state,
            node.drain_reason,
            node.drain_owner,
            node.drain_actor,
            node.automation_drain,
            node.deferred_reason,
            node.health.drain_blocked,
            node.health.finding,
            node.health.repair_next,
            node.health.burn_in_started_at,
        )
        return (
            lifecycle,
            [(e.kind, e.reason, e.actor, dict(e.detail)) for e in events],
            [dict(a.detail, **{"from": ""}) for a in audit],
        )

    assert alone.state == batched.state
    assert shape("gpu-001") == shape("gpu-002")
