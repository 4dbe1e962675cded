"""A tenant's incidents end to end on the simulated datacenter: a tenant's job on a node
computectl drains for a fault is in the tenant's list through the API, the CLI (on the data
directory and through the API), the portal's tenant page and /metrics, with the same
GPU-hours; another tenant sees none of it; hostile months are refused cleanly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import bearer, operator_headers, token_for
from compute.cli.main import cli
from compute.client.job_impact_ops import JobImpactRemote
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from compute.testing import make_runtime

pytestmark = pytest.mark.integration

TENANT, OTHER = "borealis-ai", "tundra-ml"
MONTH = "2026-01"  # compute.testing.EPOCH's month


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path, target_utilisation=0.0, racks=2, nodes_per_rack=4)
    for name in (TENANT, OTHER):
        spec = {"name": name, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 8}]}
        runtime.tenants.apply(parse_tenant(spec, runtime.settings.effective_pools), actor="t")
    assert runtime.datacenter is not None
    with runtime.datacenter.cluster_access() as c:
        job = c.submit(TENANT, "training", 8, 1, hours=4)
        assert job.start is not None
        node = job.nodes[0]
    runtime.sweep()
    runtime.datacenter.advance(1800)
    runtime.sweep()
    runtime.datacenter.inject(node, "nvlink_down")  # the job keeps running; computectl drains
    for _ in range(3):
        runtime.datacenter.advance(60)
        runtime.sweep()
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> TestClient:
    return TestClient(create_app(rt), headers=operator_headers(rt.store))


class _Over:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, query: Any = (), body: Any = None) -> Any:
        got = self.client.request(method, f"/api/v1{path}", params=list(query))
        assert got.status_code == 200, got.text
        return got.json()


def test_the_tenants_incident_everywhere(client: TestClient, rt: Runtime) -> None:
    got = client.get(f"/api/v1/tenants/{TENANT}/incidents", params={"month": MONTH}).json()
    (hit,) = got["incidents"]
    drain = rt.store.events(node=hit["node"], kinds=["drain"])[-1]
    assert (hit["tenant"], hit["cause"], hit["gpus"]) == (TENANT, "drain", 8)
    assert (hit["check"], hit["reason"]) == (drain.detail["check"], drain.reason)
    # Submitted at EPOCH, drained a little over 30 minutes later: 8 GPUs x ~0.5 h.
    assert 4.0 < hit["gpu_hours_lost"] < 4.3 and got["gpu_hours_lost"] == hit["gpu_hours_lost"]
    assert got["count"] == 1
    other = client.get(f"/api/v1/tenants/{OTHER}/incidents", params={"month": MONTH}).json()
    assert other["incidents"] == [] and other["gpu_hours_lost"] == 0
    assert client.get("/api/v1/tenants/nobody/incidents").status_code == 404
    remote = JobImpactRemote.tenant_incidents(_Over(client), TENANT, MONTH)
    assert remote == got

    # The tenant's own page shows it; the other tenant's admin may not look.
    own = bearer(token_for(rt.store, "tenant-admin", tenant=TENANT))
    page = TestClient(create_app(rt)).get(f"/portal/t/{TENANT}", headers=own)
    assert page.status_code == 200 and hit["work"] in page.text
    assert f"{hit['gpu_hours_lost']:.2f}" in page.text
    theirs = bearer(token_for(rt.store, "tenant-admin", tenant=OTHER))
    api = TestClient(create_app(rt))
    assert api.get(f"/api/v1/tenants/{TENANT}/incidents", headers=theirs).status_code == 403

    metrics = client.get("/metrics").text
    line = f'computectl_tenant_lost_gpu_seconds_total{{cause="drain",tenant="{TENANT}"}}'
    assert line in metrics

    rt.close()
    env = {"COMPUTECTL_DATA_DIR": str(rt.settings.data_dir), "COLUMNS": "300"}
    runner = CliRunner()
    local = runner.invoke(
        cli, ["tenants", "incidents", TENANT, "--month", MONTH, "-o", "json"], env=env
    )
    assert local.exit_code == 0, local.output
    assert json.loads(local.output) == got
    shown = runner.invoke(cli, ["tenants", "incidents", TENANT, "--month", MONTH], env=env)
    assert shown.exit_code == 0 and "GPU-hours lost" in shown.output, shown.output
    for bad in (["--month", "2026-13"], ["--month", "26-01"], ["--month", "2026-01-05"]):
        r = runner.invoke(cli, ["tenants", "incidents", TENANT, *bad], env=env)
        assert r.exit_code == 2 and "Traceback" not in r.output, (bad, r.output)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(month=st.one_of(st.text(max_size=12), st.sampled_from(["2026-00", "0000-01", "2026-1"])))
def test_any_month_is_an_answer_or_a_clear_refusal(client: TestClient, month: str) -> None:
    got = client.get(f"/api/v1/tenants/{TENANT}/incidents", params={"month": month})
    assert got.status_code in (200, 422), (month, got.text)
