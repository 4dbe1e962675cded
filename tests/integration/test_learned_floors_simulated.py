"""Learned floors on the simulated datacenter: the fleet's burn-ins teach a floor per model
and stack; a GPU slow by 8 % (above the fixed floor, within its node's median band) fails
the learned floor at ingest, the fixed one alone passes it, and the healthy fleet passes;
the sweep learns, the report, /metrics and the API say how floors moved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from compute.api.app import create_app
from compute.auth.testing import bearer, token_for
from compute.cli.main import cli
from compute.client import shapes
from compute.client.floors_ops import FloorsRemote
from compute.metrics import metrics_registry
from compute.runtime import Runtime
from compute.services import learned_floors
from compute.services.floors_report import report
from compute.simulation.burnin import SimulatedBurnIn
from compute.testing import make_runtime
from health.floors import load_floors
from health.result import BURNIN_SUMMARY, Status

pytestmark = pytest.mark.integration

CONFIG = {"remediation": {"periodic_burn_in_days": 0}}


def burn_in(rt: Runtime, names: list[str]) -> None:
    assert rt.datacenter is not None
    nodes = [n for n in rt.store.nodes() if n.name in names]
    SimulatedBurnIn(rt.datacenter, rt.ingest, rt.thresholds, rt.store.gpu_uuids).launch_many(nodes)


def latest(rt: Runtime, node: str, check: str) -> dict[str, object]:
    (r,) = rt.store.results(node, limit=1, check=check)
    return {"status": r.status, "evidence": r.evidence, "values": dict(r.values), "gpus": r.gpus}


def slow_down(rt: Runtime, node: str, gpu: int, factor: float) -> None:
    # Test-local: the simulated GPU's GEMM speed, as the SLOW_GEMM fault sets it (to 0.70).
    assert rt.datacenter is not None
    with rt.datacenter.fleet_access() as fleet:
        fleet.nodes[node].gpus[gpu].gemm_factor = factor


class _Remote(FloorsRemote):
    """FloorsRemote through the test client, its answer checked as the remote CLI checks it."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def _get(self, path: str, shape: Any, query: Any = ()) -> Any:
        got = self.client.get(f"/api/v1{path}", params=list(query), headers=self.headers)
        assert got.status_code == 200, got.text
        return shapes.check(got.json(), shape, "answer")


def test_slow_but_within_fixed_floor_is_caught_by_the_learned_floor(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, CONFIG, racks=4)
    try:
        rt.sweep()
        names = sorted(n.name for n in rt.store.nodes())
        target, fleet = names[0], names[1:]
        burn_in(rt, fleet)  # the fleet's history: 31 nodes x 8 GPUs of H100-SXM
        assert learned_floors.refresh(rt.store, rt.settings.floors, rt.clock.now(), force=True)
        rt.ingest.floors.forget()
        view = report(rt.store, "H100-SXM")
        gemm = next(r for r in view["floors"] if r["check"] == "gemm_bf16")
        fixed = load_floors()["H100-SXM"].gemm_bf16_tflops
        assert gemm["learned"] and gemm["samples"] >= 248 and gemm["nodes"] >= 31
        assert gemm["fixed_floor"] == fixed < gemm["learned_floor"] < gemm["median"]
        nccl = next(r for r in view["floors"] if r["check"] == "nccl_allreduce")
        assert nccl["learned_floor"] >= nccl["fixed_floor"]

        slow_down(rt, target, 3, 0.92)
        burn_in(rt, [target])
        r = latest(rt, target, "gemm_bf16")
        values = r["values"]
        assert isinstance(values, dict)
        slow = values["gpu3_tflops"]
        # The fixed floor and the node's median pass it (the node's own verdict) ...
        assert values["node_verdict"] == "pass"
        assert fixed < slow and slow > 0.9 * values["median_tflops"]
        # ... the learned floor fails it, and the burn-in with it.
        assert r["status"] is Status.FAIL and r["gpus"] == (3,)
        assert "learned floor" in str(r["evidence"])
        summary = latest(rt, target, BURNIN_SUMMARY)
        assert summary["status"] is Status.FAIL and summary["gpus"] == (3,)

        # The healthy fleet, burnt in again against the floor it taught: no false drain.
        burn_in(rt, fleet)
        assert all(latest(rt, n, BURNIN_SUMMARY)["status"] is Status.PASS for n in fleet)
    finally:
        rt.close()


def test_the_sweep_learns_and_the_views_say_so(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, CONFIG, racks=4)
    try:
        rt.sweep()
        burn_in(rt, [n.name for n in rt.store.nodes()])
        assert rt.datacenter is not None
        rt.datacenter.advance(2 * 3600)
        rt.sweep()  # older than refresh_seconds: learned again after this sweep
        view = report(rt.store)
        assert view["computed_at"] and {r["check"] for r in view["floors"]} == {
            "gemm_bf16",
            "hbm_bandwidth",
            "nccl_allreduce",
        }
        before = view["computed_at"]
        rt.sweep()  # within the hour: not again
        assert report(rt.store)["computed_at"] == before

        text = generate_latest(metrics_registry(rt)).decode()
        assert 'computectl_burnin_floor_learned{check="gemm_bf16",gpu_model="H100-SXM"' in text
        assert "computectl_burnin_median{" in text
        assert "computectl_burnin_floor_fixed{" in text

        app = create_app(rt)
        with TestClient(app) as client:
            token = token_for(rt.store, "viewer")
            remote = _Remote(client, bearer(token)).floors_report("H100-SXM")
            assert {r["model"] for r in remote["floors"]} == {"H100-SXM"}
            assert remote == json.loads(json.dumps(report(rt.store, "H100-SXM")))
            bad = client.get("/api/v1/floors?model=no%20such", headers=bearer(token))
            assert bad.status_code in (400, 422)
    finally:
        rt.close()

    runner = CliRunner()
    env = {"COMPUTECTL_DATA_DIR": str(tmp_path), "COLUMNS": "300"}
    out = runner.invoke(cli, ["floors", "report", "--model", "H100-SXM"], env=env)
    assert out.exit_code == 0, out.output
    assert "gemm_bf16" in out.output
    bad = runner.invoke(cli, ["floors", "report", "--model", "bad model"], env=env)
    assert bad.exit_code == 2


def test_with_learning_off_the_fixed_floors_alone_judge(tmp_path: Path) -> None:
    # A table learned while learning was on, then [floors] learned = false: it judges no more.
    rt = make_runtime(tmp_path, CONFIG, racks=4)
    try:
        rt.sweep()
        names = sorted(n.name for n in rt.store.nodes())
        burn_in(rt, names[1:])
        assert learned_floors.refresh(rt.store, rt.settings.floors, rt.clock.now(), force=True)
    finally:
        rt.close()
    rt = make_runtime(tmp_path, {**CONFIG, "floors": {"learned": False}}, racks=4)
    try:
        gemm = next(r for r in report(rt.store, "H100-SXM")["floors"] if r["check"] == "gemm_bf16")
        assert gemm["learned"]  # the table is still there
        slow_down(rt, names[0], 3, 0.92)
        burn_in(rt, [names[0]])
        assert latest(rt, names[0], "gemm_bf16")["status"] is Status.PASS
        assert rt.ingest.floors.for_node("H100-SXM", "any")["floors"] == []
    finally:
        rt.close()
