"""Pools' modes and incidents through the API and the CLI: the answers, the audit, and
arbitrary pool names, windows, checks and ids: a refusal is a problem document (API) or one
`error:` line and exit 2 (CLI), and changes nothing; never a server error or a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.runtime import Runtime
from compute.store import incidents as kept
from compute.testing import EPOCH, make_runtime
from tests.integration.test_validation_api import snapshot
from tests.integration.test_validation_cli import assert_clean, run

pytestmark = pytest.mark.integration

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROBLEM = "application/problem+json"
NAMES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["training", "inference", "nope", "a" * 64, "-x", "x/y", ".."]),
)
WINDOWS = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"[0-9]{1,8}[smhdy]?", fullmatch=True),
)
CHECKS = st.one_of(st.text(max_size=80), st.sampled_from(["xid", "ecc", "bogus", ""]))


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path_factory.mktemp("pools") / "data")
    runtime.sweep()
    with runtime.store.transaction() as tx:
        kept.open_incident(
            tx,
            kept.Incident(
                0,
                "rack",
                "r01",
                "training",
                EPOCH,
                "unknown",
                "test",
                {},
                ("gpu-001",),
                "open",
                1,
                None,
                "",
            ),
        )
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(
        create_app(rt), raise_server_exceptions=False, headers=operator_headers(rt.store)
    ) as c:
        yield c


def refused_cleanly(rt: Runtime, before: Any, r: Any) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM)
        assert snapshot(rt) == before


def test_modes_round_trip_and_are_audited(rt: Runtime, client: TestClient) -> None:
    modes = {p["name"]: p["mode"] for p in client.get("/api/v1/pools").json()["pools"]}
    assert modes == {"training": "enforce", "inference": "enforce"}
    r = client.post("/api/v1/pools/inference/observe", json={"check": "xid"})
    assert r.status_code == 200 and r.json()["observe_checks"] == ["xid"]
    r = client.post("/api/v1/pools/inference/observe")
    assert r.json()["mode"] == "observe" and r.json()["observe_checks"] == []
    r = client.post("/api/v1/pools/inference/enable")
    assert r.json()["mode"] == "enforce" and r.json()["mode_actor"].startswith("token:")
    assert [a.action for a in rt.store.audit(target="inference")][:3] == [
        "pool.enable",
        "pool.observe",
        "pool.observe",
    ]
    r = client.get("/api/v1/pools/training/report", params={"since": "1h"})
    assert r.status_code == 200 and r.json()["would"] == {}


def test_incidents_list_show_release(rt: Runtime, client: TestClient) -> None:
    (inc,) = client.get("/api/v1/incidents", params={"state": "open"}).json()["incidents"]
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["scope"] == "r01"
    r = client.post(f"/api/v1/incidents/{inc['id']}/release")
    assert r.status_code == 200 and r.json()["state"] == "released"
    r = client.post(f"/api/v1/incidents/{inc['id']}/release")
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert client.get("/api/v1/incidents", params={"state": "open"}).json()["incidents"] == []


@FAST
@given(name=NAMES, since=WINDOWS)
def test_report_inputs(rt: Runtime, client: TestClient, name: str, since: str) -> None:
    r = client.get(f"/api/v1/pools/{quote(name, safe='')}/report", params={"since": since})
    assert r.status_code in (200, 404, 422), r.text
    if r.status_code != 200:
        assert r.headers["content-type"].startswith(PROBLEM)


@FAST
@given(name=NAMES, check=CHECKS, verb=st.sampled_from(["observe", "enable"]))
def test_mode_inputs(rt: Runtime, client: TestClient, name: str, check: str, verb: str) -> None:
    before = snapshot(rt)
    r = client.post(f"/api/v1/pools/{quote(name, safe='')}/{verb}", json={"check": check})
    refused_cleanly(rt, before, r)
    client.post("/api/v1/pools/training/enable")
    client.post("/api/v1/pools/inference/enable")


@FAST
@given(id_=st.one_of(st.integers(), st.text(max_size=20)))
def test_incident_ids(rt: Runtime, client: TestClient, id_: Any) -> None:
    before = snapshot(rt)
    r = client.post(f"/api/v1/incidents/{quote(str(id_), safe='')}/release")
    refused_cleanly(rt, before, r)
    r = client.get(f"/api/v1/incidents/{quote(str(id_), safe='')}")
    assert r.status_code < 500


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pools-cli") / "data"
    make_runtime(path).close()
    return path


@FAST
@given(name=NAMES, since=WINDOWS, check=CHECKS)
def test_cli_inputs(
    data_dir: Path, capsys: pytest.CaptureFixture[str], name: str, since: str, check: str
) -> None:
    code, err = run(data_dir, ["pools", "report", name, "--since", since], capsys)
    assert_clean(code, err)
    code, err = run(data_dir, ["pools", "observe", name, "--check", check], capsys)
    assert_clean(code, err)
    if code == 0:
        run(data_dir, ["pools", "enable", name, "--check", check], capsys)
