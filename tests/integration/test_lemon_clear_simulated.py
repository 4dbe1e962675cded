"""An operator clears a lemon mark on the simulated datacenter: through the API (with its
authorization) and the CLI on the data directory, with the real store and the real loop."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from compute.api import create_app
from compute.auth.testing import bearer, token_for
from compute.cli.main import main
from compute.domain import Event, EventKind
from compute.metrics import metrics_registry
from compute.runtime import Runtime
from compute.services.lemon_clear import clear
from compute.services.lemons import marks
from compute.validation import reason as valid_reason
from health.inputs import InputError
from health.policy import Lifecycle
from tests.integration.test_lemons_simulated import _runtime, back, fail, state, to_repair

pytestmark = pytest.mark.integration

LEMON = "gpu-004"
V1 = "/api/v1"


def repeat(rt: Runtime, name: str) -> None:
    """Repaired, back in service, and failing again."""
    to_repair(rt, name)
    back(rt, name)
    fail(rt, name)


def make_lemon(rt: Runtime, name: str) -> None:
    fail(rt, name)  # a first fault: ordinary
    for _ in range(3):
        repeat(rt, name)
    assert list(marks(rt.store)) == [name]


def lemons_metric(rt: Runtime, pool: str) -> str:
    text = generate_latest(metrics_registry(rt)).decode()
    line = next(
        x for x in text.splitlines() if x.startswith(f'computectl_node_lemons{{pool="{pool}"')
    )
    return line.rsplit(" ", 1)[1]


@pytest.fixture
def lemon_rt(tmp_path: Path) -> Iterator[Runtime]:
    rt = _runtime(tmp_path / "data", "rma")
    make_lemon(rt, LEMON)
    yield rt
    rt.close()


@pytest.fixture
def api(lemon_rt: Runtime) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_app(lemon_rt)) as client:
        yield client, bearer(token_for(lemon_rt.store, "operator", name="alice"))


def test_clearing_through_the_api_ends_the_mark_and_keeps_the_history(
    lemon_rt: Runtime, api: tuple[TestClient, dict[str, str]]
) -> None:
    rt, (client, ops) = lemon_rt, api
    pool = client.get(f"{V1}/nodes/{LEMON}", headers=ops).json()["pool"]
    assert lemons_metric(rt, pool) == "1.0"
    viewer = bearer(token_for(rt.store, "viewer"))
    body = {"reason": "board replaced by the vendor (RMA 4711)"}
    path = f"{V1}/nodes/{LEMON}/lemon/clear"
    assert client.post(path, json=body, headers=viewer).status_code == 403
    assert client.post(path, json=body).status_code == 401

    answer = client.post(path, json=body, headers=ops)
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert done["node"] == LEMON and done["reason"] == body["reason"]
    assert done["mark"]["reason"].startswith("lemon: failed again after repair 3 times")

    # The mark is gone from the node's views and /metrics ...
    listed = {n["name"]: n for n in client.get(f"{V1}/nodes", headers=ops).json()["nodes"]}
    assert listed[LEMON]["lemon"] is None
    assert client.get(f"{V1}/nodes/{LEMON}", headers=ops).json()["lemon"] is None
    assert lemons_metric(rt, pool) == "0.0"
    assert marks(rt.store) == {}
    # ... and the history keeps both: the events, the RMA report, the audit trail.
    query = f"{V1}/events?node={LEMON}&kind=lemon&kind=lemon_cleared"
    events = client.get(query, headers=ops).json()["events"]
    assert [e["kind"] for e in events] == ["lemon_cleared", "lemon"]
    clear = events[0]
    assert clear["actor"] == done["actor"] and "alice" in clear["actor"]
    assert clear["detail"]["reason"] == body["reason"] and body["reason"] in clear["reason"]
    assert clear["detail"]["mark_at"] == done["mark"]["at"] == events[1]["at"]
    report = client.get(f"{V1}/nodes/{LEMON}/rma-report", headers=ops).json()
    assert report["lemon"] is None
    kinds = [e["kind"] for e in report["history"]]
    assert "lemon" in kinds and "lemon_cleared" in kinds
    audit = [a for a in rt.store.audit(target=LEMON, limit=100) if a.action == "node.lemon_clear"]
    assert len(audit) == 1 and audit[0].actor == done["actor"]
    assert audit[0].detail["reason"] == body["reason"]

    # Cleared once: a second clear is refused in one line, and so is an unknown node.
    again = client.post(path, json=body, headers=ops)
    assert again.status_code == 409
    assert again.json()["detail"] == f"{LEMON} is not marked a lemon; nothing to clear"
    unknown = client.post(f"{V1}/nodes/gpu-999/lemon/clear", json=body, headers=ops)
    assert unknown.status_code == 404


def test_after_a_clear_only_new_repeats_make_a_new_mark(
    lemon_rt: Runtime, api: tuple[TestClient, dict[str, str]]
) -> None:
    rt, (client, ops) = lemon_rt, api
    path = f"{V1}/nodes/{LEMON}/lemon/clear"
    assert client.post(path, json={"reason": "RMA came back"}, headers=ops).status_code == 200
    cleared_at = rt.store.events(node=LEMON, kinds=[EventKind.LEMON_CLEARED], limit=1)[0]
    # The repair after the clear: the old repeats are forgotten, two new ones are not enough.
    for _ in range(2):
        repeat(rt, LEMON)
    assert marks(rt.store) == {}
    repeat(rt, LEMON)
    found = marks(rt.store)
    assert list(found) == [LEMON]
    failures = found[LEMON].detail["failures"]
    assert len(failures) == 3 and all(f > cleared_at.at.isoformat() for f in failures)
    kinds = [e.kind for e in rt.store.events(node=LEMON, kinds=["lemon", "lemon_cleared"])]
    assert kinds == ["lemon", "lemon_cleared", "lemon"]


def test_a_cleared_lemon_is_not_retired_by_policy(tmp_path: Path) -> None:
    rt = _runtime(tmp_path / "data", "retire")
    try:
        kept, cleared = "gpu-006", "gpu-007"
        now = rt.clock.now()
        with rt.store.transaction() as tx:  # two marks for retiring, as a scan writes them
            for name in (kept, cleared):
                detail = {"action": "retire", "failures": []}
                tx.add_event(Event(now, name, EventKind.LEMON, "lemon: test", detail=detail))
        clear(rt.store, cleared, "board replaced", "operator:test", now)
        for name in (kept, cleared):  # out of service by an operator's drain
            rt.nodes.drain(name, "maintenance", actor="operator:test", now_mode=True)
        rt.sweep()
        assert state(rt, kept) is Lifecycle.RETIRED
        assert state(rt, cleared) is Lifecycle.DRAINED
    finally:
        rt.close()


HOSTILE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HOSTILE
@given(reason=st.one_of(st.text(max_size=200), st.integers(), st.none(), st.booleans()))
def test_any_reason_is_refused_or_taken_never_an_error(
    lemon_rt: Runtime, api: tuple[TestClient, dict[str, str]], reason: object
) -> None:
    client, ops = api
    before = len(rt_events(lemon_rt))
    # gpu-001 is no lemon: a reason the API takes ends in the refusal, any other in 422.
    answer = client.post(f"{V1}/nodes/gpu-001/lemon/clear", json={"reason": reason}, headers=ops)
    try:
        valid = isinstance(reason, str) and len(reason) <= 160 and bool(valid_reason(reason))
    except InputError:
        valid = False
    assert answer.status_code == (409 if valid else 422), (reason, answer.text)
    assert len(rt_events(lemon_rt)) == before


def rt_events(rt: Runtime) -> list[object]:
    return list(rt.store.events(kinds=[EventKind.LEMON_CLEARED], limit=1000))


def cli(
    data_dir: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``computectl ARGS`` in-process on the data directory (exit code, stdout, stderr)."""
    capsys.readouterr()
    old = os.environ.get("COMPUTECTL_DATA_DIR")
    os.environ["COMPUTECTL_DATA_DIR"] = str(data_dir)
    try:
        with pytest.raises(SystemExit) as ended:
            main(args)
    finally:
        if old is None:
            del os.environ["COMPUTECTL_DATA_DIR"]
        else:
            os.environ["COMPUTECTL_DATA_DIR"] = old
    out, err = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_the_cli_clears_on_the_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    rt = _runtime(data, "rma")
    try:
        make_lemon(rt, LEMON)
    finally:
        rt.close()
    code, out, _ = cli(data, ["nodes", "list", "-o", "table"], capsys)
    row = next(x for x in out.splitlines() if x.startswith(LEMON))
    assert code == 0 and "(lemon)" in row

    args = ["nodes", "clear-lemon", LEMON, "--reason", "board  replaced"]
    code, out, err = cli(data, [*args, "-o", "json"], capsys)
    assert (code, err) == (0, ""), err
    done = json.loads(out)
    assert done["node"] == LEMON and done["reason"] == "board replaced"
    assert done["actor"].startswith("operator:")

    code, out, _ = cli(data, ["nodes", "list", "-o", "table"], capsys)
    row = next(x for x in out.splitlines() if x.startswith(LEMON))
    assert code == 0 and "(lemon)" not in row
    code, out, _ = cli(data, ["nodes", "show", LEMON, "-o", "json"], capsys)
    assert code == 0 and json.loads(out)["lemon"] is None

    # Refusals: one line, exit 2, nothing written.
    code, out, err = cli(data, args, capsys)
    assert (code, out) == (2, "")
    assert err == f"error: {LEMON} is not marked a lemon; nothing to clear\n"
    code, out, err = cli(data, ["nodes", "clear-lemon", "gpu-999", "--reason", "x"], capsys)
    assert (code, out, err) == (2, "", "error: unknown node 'gpu-999'\n")
    for bad in (["--reason", "a\x1b[2Jb"], ["--reason", "x" * 161], ["--reason", " "], []):
        code, out, err = cli(data, ["nodes", "clear-lemon", LEMON, *bad], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ")
    rt = _runtime(data, "rma")
    try:
        clears = rt.store.events(node=LEMON, kinds=[EventKind.LEMON_CLEARED], limit=10)
        assert len(clears) == 1 and clears[0].detail["reason"] == "board replaced"
    finally:
        rt.close()
