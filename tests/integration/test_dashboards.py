"""The alerting and recording rules, checked and unit-tested by Debian's promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from compute.store import Store
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


def _exported() -> set[str]:
    """Every metric name /metrics and the node check's textfile write, as Prometheus stores
    them (counters with _total, histograms with _bucket, _sum and _count)."""
    root = DIR.parent
    sources = [*(root / "compute" / "metrics").glob("*.py"), root / "health" / "node_check.py"]
    names = {m for f in sources for m in re.findall(r"\b(computectl_[a-z0-9_]+)", f.read_text())}
    return names | {n + s for n in names for s in ("_total", "_bucket", "_sum", "_count")}


def test_dashboard_queries_name_real_metrics_and_rules() -> None:
    board = json.loads((DIR / "grafana" / "computectl-fleet.json").read_text())
    rules = (DIR / "prometheus" / "computectl.rules.yml").read_text()
    recorded = set(re.findall(r"^\s*- record: (\S+)$", rules, re.MULTILINE))
    exported = _exported()
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            assert "computectl_" in expr, panel["title"]
            for name in re.findall(r"[a-z_]*:?computectl_[a-z0-9_:]*", expr):
                known = recorded if ":" in name else exported
                assert name in known, f"{panel['title']}: {name} is neither exported nor recorded"


def test_rules_name_real_metrics() -> None:
    text = (DIR / "prometheus" / "computectl.rules.yml").read_text()
    exported = _exported()
    for name in set(re.findall(r"(?<![:\w])computectl_[a-z0-9_]+", text)):
        assert name in exported, f"the rules read {name}, which nothing exports"


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
