"""Energy beside GPU-hours, end to end on the simulated datacenter: a tenant's job draws
energy, which the API, the CLI (local and through the API) and the billing export show
alike, in JSON and CSV; the fleet's export adds up to the fleet's measured energy."""

from __future__ import annotations

import csv
import io
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
from compute.auth.testing import operator_headers
from compute.billing_csv import CSV_COLUMNS
from compute.cli.main import cli
from compute.client.energy_ops import EnergyRemote
from compute.errors import InvalidInput
from compute.runtime import Runtime
from compute.services import energy
from compute.store import energy as kept
from compute.tenants.spec import parse_tenant
from compute.testing import make_runtime

pytestmark = pytest.mark.integration
TENANT = "borealis-ai"
DAY = "2026-01-05"  # compute.testing.EPOCH's day


def sweep(rt: Runtime) -> None:
    """The sweep and energy's after-sweep hook (as Runtime.sweep runs it)."""
    rt.sweeper.run()
    assert energy.after_sweep(rt) == []


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(
        tmp_path, {"energy": {"pue": 1.5}}, target_utilisation=0.0, racks=2, nodes_per_rack=4
    )
    spec = {"name": TENANT, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 16}]}
    runtime.tenants.apply(parse_tenant(spec, runtime.settings.effective_pools), actor="op:test")
    assert runtime.datacenter is not None
    with runtime.datacenter.cluster_access() as c:
        assert c.submit(TENANT, "training", 8, 2, hours=2).start is not None
    sweep(runtime)
    for _ in range(4):
        runtime.datacenter.advance(300)
        sweep(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), headers=operator_headers(rt.store)) as c:
        yield c


def test_a_tenants_usage_carries_its_energy_beside_its_gpu_hours(client: TestClient) -> None:
    got = client.get(f"/api/v1/tenants/{TENANT}/usage", params={"days": 1})
    assert got.status_code == 200, got.text
    answer = got.json()
    assert answer["tenant"] == TENANT and answer["rows"]  # the usage view, as before
    bill = answer["billing"]
    [row] = bill["rows"]
    assert (row["tenant"], row["holder"], row["day"], row["pool"]) == (
        TENANT,
        "tenant",
        DAY,
        "training",
    )
    # 16 GPUs for 20 minutes, and the energy of the two nodes they fill.
    assert row["gpu_hours"] == pytest.approx(16 * 20 / 60, rel=0.01)
    assert row["energy_kwh"] > 0
    assert row["facility_kwh"] == pytest.approx(row["energy_kwh"] * 1.5, rel=1e-6)
    assert bill["totals"]["energy_kwh"] == pytest.approx(row["energy_kwh"])
    # The same rows as CSV, by the query or by Accept.
    for kwargs in ({"params": {"format": "csv"}}, {"headers": {"Accept": "text/csv"}}):
        text = client.get(f"/api/v1/tenants/{TENANT}/usage", **kwargs)  # type: ignore[arg-type]
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
        [line] = list(csv.DictReader(io.StringIO(text.text)))
        assert tuple(line) == CSV_COLUMNS
        assert float(line["energy_kwh"]) == pytest.approx(row["energy_kwh"])


def test_the_fleets_export_adds_up_to_the_fleets_energy(client: TestClient, rt: Runtime) -> None:
    got = client.get("/api/v1/usage", params={"from": DAY, "to": DAY})
    assert got.status_code == 200, got.text
    rows = got.json()["rows"]
    assert {r["holder"] for r in rows} <= {"tenant", "idle", "out_of_service"}
    assert {r["tenant"] for r in rows if r["holder"] == "tenant"} == {TENANT}
    fleet_kwh = sum(t[4] for t in kept.totals(rt.store)) / 3.6e9
    assert sum(r["energy_kwh"] for r in rows) == pytest.approx(fleet_kwh, rel=1e-5)
    assert sum(r["energy_kwh"] for r in rows if r["holder"] == "idle") > 0
    text = client.get("/api/v1/usage", params={"from": DAY, "format": "csv"}).text
    assert len(text.splitlines()) == len(rows) + 1


class _Over:
    """EnergyRemote's transport through the test client (the API as the remote CLI calls
    it)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, query: Any = (), body: Any = None) -> Any:
        got = self.client.request(method, f"/api/v1{path}", params=list(query))
        assert got.status_code == 200, got.text
        return got.json()


def test_local_and_remote_answer_the_same_view(client: TestClient, rt: Runtime) -> None:
    remote = EnergyRemote.tenant_billing(_Over(client), TENANT, None, DAY, DAY)
    fleet = EnergyRemote.fleet_billing(_Over(client), DAY, None)
    rt.close()
    env = {"COMPUTECTL_DATA_DIR": str(rt.settings.data_dir), "COLUMNS": "300"}
    runner = CliRunner()
    local = runner.invoke(cli, ["tenants", "usage", TENANT, "--from", DAY, "-o", "json"], env=env)
    assert local.exit_code == 0, local.output
    assert json.loads(local.output)["billing"] == remote["billing"]
    export = runner.invoke(cli, ["tenants", "usage", "--all", "--from", DAY, "--csv"], env=env)
    assert export.exit_code == 0, export.output
    assert len(export.output.splitlines()) == len(fleet["rows"]) + 1
    shown = runner.invoke(cli, ["tenants", "usage", TENANT], env=env)
    assert shown.exit_code == 0 and "facility kWh" in shown.output, shown.output
    for bad in (
        ["tenants", "usage"],
        ["tenants", "usage", TENANT, "--all", "--from", DAY],
        ["tenants", "usage", "--all", "--days", "3"],
        ["tenants", "usage", TENANT, "--to", DAY],
        ["tenants", "usage", TENANT, "--days", "3", "--from", DAY],
        ["tenants", "usage", TENANT, "--from", "2026-1-5x"],
        ["tenants", "usage", TENANT, "--from", "2025-01-01"],
    ):
        r = runner.invoke(cli, bad, env=env)
        # Click refuses its own (exit 2); a window the service refuses is InvalidInput,
        # which compute.cli.main.main prints in one line with exit 2.
        assert r.exit_code == 2 or isinstance(r.exception, InvalidInput), (bad, r.output)
        assert "Traceback" not in r.output


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.one_of(st.none(), st.text(max_size=14), st.dates().map(str)),
    last=st.one_of(st.none(), st.text(max_size=14), st.dates().map(str)),
    days=st.one_of(st.none(), st.integers(-5, 200)),
    fmt=st.one_of(st.none(), st.sampled_from(["csv", "json", "xml", ""])),
)
def test_any_window_is_an_answer_or_a_clear_refusal(
    client: TestClient, first: Any, last: Any, days: Any, fmt: Any
) -> None:
    params = {
        k: v
        for k, v in (("from", first), ("to", last), ("days", days), ("format", fmt))
        if v is not None
    }
    for path in (f"/api/v1/tenants/{TENANT}/usage", "/api/v1/usage"):
        got = client.get(path, params=params)
        assert got.status_code in (200, 422), (path, params, got.text)
        if got.status_code == 422:
            assert got.json()["detail"]


def test_metrics_count_the_tenants_and_the_fleets_joules(client: TestClient, rt: Runtime) -> None:
    text = client.get("/metrics").text
    mine = [
        line
        for line in text.splitlines()
        if line.startswith("computectl_tenant_energy_joules_total{")
        and f'tenant="{TENANT}"' in line
    ]
    assert len(mine) == 1 and 'pool="training"' in mine[0]
    joules = float(mine[0].split()[-1])
    bill = client.get(f"/api/v1/tenants/{TENANT}/usage", params={"days": 1}).json()["billing"]
    assert joules / 3.6e6 == pytest.approx(bill["totals"]["energy_kwh"], rel=1e-5)
    fleet = sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("computectl_fleet_energy_joules_total{")
    )
    assert fleet == pytest.approx(sum(t[4] for t in kept.totals(rt.store)) / 1000)


def test_the_tenants_page_shows_its_energy(client: TestClient) -> None:
    page = client.get(f"/portal/t/{TENANT}")
    assert page.status_code == 200, page.text
    bill = client.get(f"/api/v1/tenants/{TENANT}/usage", params={"days": 7}).json()["billing"]
    assert 'data-testid="energy"' in page.text
    assert f'data-testid="energy-total">{bill["totals"]["energy_kwh"]:.3f}<' in page.text
