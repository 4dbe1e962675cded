"""The HTTP API, /metrics checked by Debian's promtool, and the overview page's data."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.auth.testing import operator_headers, token_for
from compute.runtime import Runtime
from compute.testing import make_runtime

pytestmark = pytest.mark.integration

GOOD = {"check": "xid", "version": "1", "status": "pass", "at": "2026-01-05T08:00:00+00:00"}


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path)
    runtime.sweep()
    runtime.sweep()
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), headers=operator_headers(rt.store)) as c:
        yield c


def test_nodes_and_node_detail(client: TestClient) -> None:
    nodes = client.get("/api/v1/nodes").json()["nodes"]
    assert len(nodes) == 32 and {n["state"] for n in nodes} == {"in_service"}
    one = client.get("/api/v1/nodes/gpu-001").json()
    assert len(one["gpus"]) == 8 and {r["check"] for r in one["results"]} >= {"xid", "ecc"}
    assert client.get("/api/v1/nodes", params={"state": "drained"}).json()["nodes"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/nodes/gpu-999", 404),
        ("/api/v1/nodes?state=broken", 422),
        ("/api/v1/nodes?pool=nope", 404),
        ("/api/v1/events?node=gpu-999", 404),
    ],
)
def test_bad_reads_are_clear_errors(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert set(r.json()) == {"type", "title", "status", "detail", "code"}


def test_posted_fatal_result_drains_on_next_sweep(client: TestClient, rt: Runtime) -> None:
    report = [{**GOOD, "status": "fail", "fatal": True, "evidence": "XID 79 on GPU 5"}]
    r = client.post("/api/v1/nodes/gpu-012/health", json=report)
    assert r.status_code == 202 and r.json()["finding"]["fatal"]
    client.post("/api/v1/sweep")
    node = client.get("/api/v1/nodes/gpu-012").json()
    assert node["state"] in ("draining", "drained")
    assert node["drain_reason"] == "computectl: xid: XID 79 on GPU 5"
    events = client.get("/api/v1/events", params={"node": "gpu-012", "kind": "drain"}).json()
    assert events["events"][0]["reason"] == node["drain_reason"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "non-empty list"),
        ({"results": [GOOD], "extra": 1}, "unknown field"),
        ([GOOD, {**GOOD, "status": "bad"}], "result 1: xid: 'status' must be one of"),
        ([{**GOOD, "node": "gpu-002"}], "was posted for"),
        ("not a list", "non-empty list"),
    ],
)
def test_malformed_health_report_is_refused_and_changes_nothing(
    client: TestClient, rt: Runtime, body: object, message: str
) -> None:
    before = rt.store.count_results()
    r = client.post("/api/v1/nodes/gpu-003/health", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert rt.store.count_results() == before


def test_health_report_for_unknown_node_is_404(client: TestClient, rt: Runtime) -> None:
    before = rt.store.count_results()
    r = client.post("/api/v1/nodes/gpu-999/health", json=[{**GOOD, "node": "gpu-999"}])
    assert r.status_code == 404 and rt.store.count_results() == before


def test_invalid_json_is_a_clear_error(client: TestClient) -> None:
    r = client.post(
        "/api/v1/nodes/gpu-003/health",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"


def test_drain_and_resume_over_http(client: TestClient) -> None:
    r = client.post("/api/v1/nodes/gpu-004/drain", json={"reason": "bad fan"})
    assert r.status_code == 200 and r.json()["drain_reason"] == "computectl: operator: bad fan"
    refused = client.post("/api/v1/nodes/gpu-005/resume", json={})
    assert refused.status_code == 409 and refused.json()["code"] == "refused"
    assert client.post("/api/v1/nodes/gpu-004/drain", json={}).status_code == 422
    r = client.post("/api/v1/nodes/gpu-004/resume", json={"skip_burn_in": True})
    assert r.status_code == 200 and r.json()["state"] == "in_service"


def test_without_a_credential_only_healthz_answers(rt: Runtime) -> None:
    with TestClient(create_app(rt)) as c:
        assert c.post("/api/v1/nodes/gpu-001/drain", json={"reason": "x"}).status_code == 401
        assert c.get("/api/v1/nodes").status_code == 401
        assert c.get("/healthz").status_code == 200
        viewer = {"authorization": f"Bearer {token_for(rt.store, 'viewer')}"}
        assert c.get("/api/v1/nodes", headers=viewer).status_code == 200
        assert c.post("/api/v1/sweep", headers=viewer).status_code == 403
    assert rt.store.node("gpu-001").state.value == "in_service"  # type: ignore[union-attr]


def test_capacity_and_racks(client: TestClient) -> None:
    cap = client.get("/api/v1/capacity").json()
    assert cap["installed_gpus"] == cap["total_gpus"] == 256
    assert sum(t["gpus"] for t in cap["by_tenant"]) == sum(
        r["gpus"] for r in cap["by_state"] if r["state"] == "allocated"
    )
    racks = client.get("/api/v1/racks").json()["racks"]
    assert len(racks) == 4 and all(r["power_watts"] > 8000 for r in racks)


def test_overview_page_and_its_data(client: TestClient) -> None:
    assert "fleet overview" in client.get("/").text
    o = client.get("/api/v1/overview").json()
    assert len(o["racks"]) == 4 and sum(len(r["nodes"]) for r in o["racks"]) == 32
    assert o["gpus"]["installed"] == 256
    assert client.get("/healthz").json()["status"] == "ok"
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text
    # Swagger UI comes from the control plane itself; a name it does not know is not a path.
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    for name in ("..%2F..%2Fpyproject.toml", "index.html", "swagger-ui.js.map"):
        assert client.get(f"/docs/assets/{name}").status_code == 404
    assert "/api/v1/nodes/{name}/health" in client.get("/openapi.json").json()["paths"]


def test_metrics_pass_promtool(client: TestClient, rt: Runtime) -> None:
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-020", "xid79")
    rt.sweep()
    text = client.get("/metrics").text
    assert 'computectl_gpus{gpu_model="H100-SXM",pool="training",state="drained"} 8.0' in text
    assert "computectl_node_drain_info{" in text and 'reason="computectl: gpu_count' in text
    assert "computectl_rack_power_watts" in text and "computectl_events_total" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: run `make sysdeps` (Debian package prometheus)")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, text=True, capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stderr


def test_tenants_over_http(client: TestClient) -> None:
    spec = {"name": "borealis-ai", "users": ["alice"], "quotas": [{"pool": "training", "gpus": 16}]}
    plan = client.post("/api/v1/tenants/plan", json=spec).json()
    assert {c["target"] for c in plan["changes"]} >= {"account borealis-ai"}
    assert client.put("/api/v1/tenants/borealis-ai", json=spec).status_code == 200
    assert client.put("/api/v1/tenants/borealis-ai", json=spec).json()["changes"] == []
    assert client.put("/api/v1/tenants/other", json=spec).status_code == 422
    bad = client.put(
        "/api/v1/tenants/borealis-ai", json={**spec, "quotas": [{"pool": "nope", "gpus": 1}]}
    )
    assert bad.status_code == 422 and "unknown pool" in bad.json()["detail"]
    listed = client.get("/api/v1/tenants").json()["tenants"]
    assert [t["name"] for t in listed] == ["borealis-ai"]
    assert client.post("/api/v1/tenants/borealis-ai/suspend").json()["changes"]
    assert client.get("/api/v1/tenants/borealis-ai").json()["state"] == "suspended"
    assert client.delete("/api/v1/tenants/borealis-ai").status_code == 200
    assert client.get("/api/v1/tenants/borealis-ai").status_code == 404
