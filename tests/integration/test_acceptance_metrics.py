"""Tranche acceptance on /metrics: a tranche run on the simulated datacenter through its
states, scraped over HTTP after every sweep and linted by Debian's promtool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from compute.api import create_app
from compute.runtime import Runtime
from compute.services import acceptance
from compute.store import Store
from compute.testing import make_runtime
from tests.integration.test_dashboards import promtool
from tests.unit.test_acceptance_metrics import each_state
from tests.unit.test_metrics import Scrape

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(
        tmp_path,
        target_utilisation=0.0,
        config={
            "server": {"metrics_public": True},
            "remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"},
        },
    )
    runtime.sweep()
    yield runtime
    runtime.close()


def lint(body: str) -> None:
    r = promtool("check", "metrics", stdin=body)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def figures(body: str, tranche: str) -> dict[tuple[str, str], float]:
    """(sample name, its state or verdict label or "") -> value, for one tranche."""
    return {
        (s.name, s.labels.get("state") or s.labels.get("verdict") or ""): s.value
        for f in text_string_to_metric_families(body)
        if f.name.startswith("computectl_acceptance_")
        for s in f.samples
        if s.labels.get("tranche") == tranche
    }


def test_a_run_through_its_states_on_metrics(rt: Runtime) -> None:
    assert rt.datacenter is not None
    names = [f"gpu-{i:03d}" for i in range(1, 7)]
    rt.datacenter.inject(names[2], "slow_gemm", gpu=1)
    acceptance.create(rt.store, rt.clock, "hall-b", "operator:test", nodes=names, threshold=0.95)
    seen: list[str] = []
    with TestClient(create_app(rt)) as client:
        body = client.get("/metrics").text
        assert figures(body, "hall-b")[("computectl_acceptance_nodes", "pending")] == 6
        acceptance.run(rt.store, rt.clock, "hall-b")
        for _ in range(12):
            rt.sweep()
            body = client.get("/metrics").text
            lint(body)
            got = figures(body, "hall-b")
            state = acceptance.get(rt.store, "hall-b").state
            seen.append(state)
            assert got[("computectl_acceptance_state", state)] == 1
            assert sum(v for (n, _), v in got.items() if n == "computectl_acceptance_nodes") == 6
            if state == acceptance.FAILED:
                break
    assert seen[0] == "running" and "judged" in seen and seen[-1] == "failed"
    assert got[("computectl_acceptance_nodes", "accepted")] == 5
    assert got[("computectl_acceptance_nodes", "failed")] == 1
    assert got[("computectl_acceptance_pass_ratio", "")] == pytest.approx(5 / 6)
    assert got[("computectl_acceptance_threshold", "")] == 0.95
    report = acceptance.report(rt.store, "hall-b")
    assert (report["accepted"], report["failed"]) == (5, 1)
    started = acceptance.get(rt.store, "hall-b").started_at
    assert started is not None
    assert got[("computectl_acceptance_started_timestamp_seconds", "")] == started.timestamp()


def test_a_tranche_in_each_state_passes_promtool(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        each_state(store)
        body = generate_latest(Scrape(store).registry).decode()
    finally:
        store.close()
    assert 'computectl_acceptance_nodes{tranche="burning",verdict="pending"} 2.0' in body
    lint(body)
