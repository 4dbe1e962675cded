"""Tranche acceptance through the API, the client's remote calls and the CLI on the data
directory, on the simulated datacenter: the same report everywhere, as JSON and as one
escaped HTML page; hostile input refused at the edge (API 4xx, CLI exit 2 with one line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import bearer, operator_headers, token_for
from compute.cli.main import cli, main
from compute.client.acceptance_ops import AcceptanceRemote
from compute.runtime import Runtime
from compute.testing import make_runtime

pytestmark = pytest.mark.integration

BAD, SLOW = "gpu-003", "gpu-006"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(
        tmp_path,
        target_utilisation=0.0,
        racks=1,
        nodes_per_rack=8,
        config={"remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"}},
    )
    runtime.sweep()
    yield runtime
    runtime.close()


class _Over:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, query: Any = (), body: Any = None) -> Any:
        got = self.client.request(method, f"/api/v1{path}", params=list(query), json=body)
        assert got.status_code in (200, 201), got.text
        return got.json()


def test_api_and_remote_client(rt: Runtime) -> None:
    assert rt.datacenter is not None
    rt.datacenter.inject(BAD, "slow_gemm", gpu=1)
    rt.datacenter.inject_link(SLOW, "gpu-007")
    client = TestClient(create_app(rt), headers=operator_headers(rt.store))
    made = AcceptanceRemote.acceptance_create(_Over(client), "t1", ["gpu-[001-008]"], None, 0.8)  # type: ignore[arg-type]
    assert (made["state"], made["nodes"]) == ("created", 8)
    assert (
        client.post("/api/v1/acceptance", json={"name": "t1", "nodes": ["gpu-001"]}).status_code
        == 409
    )
    ran = AcceptanceRemote.acceptance_run(_Over(client), "t1")  # type: ignore[arg-type]
    assert ran["state"] == "running"
    for _ in range(8):
        rt.sweep()
    status = client.get("/api/v1/acceptance/t1").json()
    assert status["state"] == "live" and status["accepted"] == 7
    got = client.get("/api/v1/acceptance/t1/report").json()
    assert [r["node"] for r in got["rma"]] == [BAD]
    assert got["suspect_links"] == [[SLOW, "gpu-007"]] and got["live"] is True
    assert AcceptanceRemote.acceptance_report(_Over(client), "t1") == got  # type: ignore[arg-type]
    assert [t["name"] for t in AcceptanceRemote.acceptance_list(_Over(client))["tranches"]] == [
        "t1"
    ]  # type: ignore[arg-type]
    # The page, both ways, for a viewer too; a tenant may not look.
    viewer = bearer(token_for(rt.store, "viewer"))
    for path in ("/api/v1/acceptance/t1/report.html", "/api/v1/acceptance/t1/report?format=html"):
        page = TestClient(create_app(rt)).get(path, headers=viewer)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert BAD in page.text and f"{SLOW} - gpu-007" in page.text and "<script" not in page.text
    node = bearer(token_for(rt.store, "node", node="gpu-001"))
    refused = TestClient(create_app(rt)).get("/api/v1/acceptance/t1/report", headers=node)
    assert refused.status_code == 403


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(min_size=1, max_size=80),
    threshold=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    nodes=st.lists(st.text(max_size=40), max_size=3),
)
def test_hostile_bodies_are_refused_with_a_4xx(
    rt: Runtime, name: str, threshold: Any, nodes: list[str]
) -> None:
    client = TestClient(create_app(rt), headers=operator_headers(rt.store))
    body = {"name": name, "nodes": nodes, "threshold": threshold}
    # Sent as written (NaN and Infinity too, which a strict encoder would not send).
    raw = json.dumps(body)
    got = client.post(
        "/api/v1/acceptance", content=raw, headers={"Content-Type": "application/json"}
    )
    assert got.status_code < 500, got.text
    assert client.get(f"/api/v1/acceptance/{quote(name, safe='')}/report").status_code < 500


def test_cli_on_the_data_directory(rt: Runtime, tmp_path: Path) -> None:
    assert rt.datacenter is not None
    rt.datacenter.inject(BAD, "sdc_bitflip", gpu=2)
    env = {"COMPUTECTL_DATA_DIR": str(rt.settings.data_dir), "COLUMNS": "300"}
    runner = CliRunner()
    made = runner.invoke(cli, ["acceptance", "create", "t2", "--nodes", "gpu-[001-008]"], env=env)
    assert made.exit_code == 0, made.output
    ran = runner.invoke(cli, ["acceptance", "run", "t2"], env=env)
    assert ran.exit_code == 0 and "running" in ran.output
    for _ in range(8):
        rt.sweep()
    status = runner.invoke(cli, ["acceptance", "status", "t2"], env=env)
    assert status.exit_code == 0 and "failed" in status.output, status.output
    page = tmp_path / "t2.html"
    shown = runner.invoke(cli, ["acceptance", "report", "t2", "--html", str(page)], env=env)
    assert shown.exit_code == 0 and "7 of 8 accepted" in shown.output and BAD in shown.output
    assert BAD in page.read_text()
    as_json = runner.invoke(cli, ["acceptance", "report", "t2", "-o", "json"], env=env)
    assert json.loads(as_json.output)["rma"][0]["node"] == BAD
    listed = runner.invoke(cli, ["acceptance", "list"], env=env)
    assert "t2" in listed.output


def test_cli_refusals_are_one_line(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMPUTECTL_DATA_DIR", str(rt.settings.data_dir))
    for bad in (
        ["create", "x", "--nodes", "gpu-[001-008]", "--threshold", "1.5"],
        ["create", "x", "--nodes", "gpu-[001-008]", "--threshold", "nan"],
        ["create", "<b>", "--nodes", "gpu-001"],
        ["create", "x"],
        ["create", "x", "--nodes", "gpu-[9-1]"],
        ["create", "x", "--nodes", "nope-1"],
        ["status", "nope"],
        ["run", "../x"],
        ["report", "nope"],
    ):
        with pytest.raises(SystemExit) as done:
            main(["acceptance", *bad])
        out = capsys.readouterr()
        assert done.value.code in (2, 3, 4), (bad, done.value.code, out)
        assert len(out.err.strip().splitlines()) == 1 and not out.out, (bad, out)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(min_size=1, max_size=70),
    hostlist=st.text(min_size=1, max_size=40),
    threshold=st.text(min_size=1, max_size=8),
)
def test_any_cli_input_is_refused_in_one_line_or_taken(
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    hostlist: str,
    threshold: str,
) -> None:
    monkeypatch.setenv("COMPUTECTL_DATA_DIR", str(rt.settings.data_dir))
    argv = ["acceptance", "create", name, "--nodes", hostlist, "--threshold", threshold]
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr()
    assert done.value.code in (0, 2, 3, 4), (argv, done.value.code, out)
    if done.value.code:
        assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err, out
