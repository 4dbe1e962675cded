"""The alerting and recording rules, checked and unit-tested by Debian's promtool, and the
generated boards' queries parsed by it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from compute.store import Store
from dashboards import build
from dashboards.names import board_expressions
from tests.unit.test_metrics import Scrape, check_pool_mode_brake_and_leadership, scenario

pytestmark = pytest.mark.integration
DIR = Path(__file__).resolve().parents[2] / "dashboards"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool missing: run `make sysdeps` (Debian package prometheus)")
    return subprocess.run(
        [tool, *args], input=stdin, capture_output=True, text=True, cwd=DIR / "prometheus"
    )


def test_rules_are_valid() -> None:
    r = promtool("check", "rules", "computectl.rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_unit_tests_pass() -> None:
    r = promtool("test", "rules", "computectl.rules.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_board_query_parses(tmp_path: Path) -> None:
    """Each query of the generated boards, as a recording rule, passes promtool's parser
    (which names they read is tests/unit/test_dashboards.py's business)."""
    exprs = [
        e for model in build.models().values() for _, e in board_expressions(model_json(model))
    ]
    rules = {
        "groups": [
            {
                "name": "boards",
                "rules": [{"record": f"board:query_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "boards.rules.yml"
    path.write_text(json.dumps(rules))
    r = promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in r.stdout


def model_json(model: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(build.render(model))
    return loaded


def test_remediation_figures_pass_promtool(tmp_path: Path) -> None:
    """Every new family with samples in it (histograms, counters by cause, the brake, the
    lease), as one scrape writes them, passes promtool's lint."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        scenario(store)
        check_pool_mode_brake_and_leadership(store)
        body = generate_latest(Scrape(store).registry).decode()
    finally:
        store.close()
    assert "computectl_detection_to_drain_seconds_bucket{" in body
    assert "computectl_brake_engaged{" in body and "computectl_leader_epoch{" in body
    r = promtool("check", "metrics", stdin=body)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_a_scrape_of_the_embedded_default_passes_promtool(tmp_path: Path) -> None:
    """Every family /metrics serves on the embedded default after a sweep (power, racks and
    energy included), as Prometheus reads it, passes promtool's lint."""
    from fastapi.testclient import TestClient

    from compute.api import create_app
    from compute.services.leadership import Leadership
    from compute.testing import make_runtime

    rt = make_runtime(tmp_path / "data", config={"server": {"metrics_public": True}})
    rt.leadership = Leadership(rt.store, ttl=30)
    try:
        rt.sweep()
        assert rt.datacenter is not None
        rt.datacenter.advance(120)
        rt.sweep()
        with TestClient(create_app(rt)) as client:
            r = client.get("/metrics")
    finally:
        rt.close()
    assert r.status_code == 200, r.text
    assert "computectl_rack_power_watts{" in r.text
    lint = promtool("check", "metrics", stdin=r.text)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), (
        lint.stdout + lint.stderr
    )
