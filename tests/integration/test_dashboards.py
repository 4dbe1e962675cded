"""The alerting and recording rules, checked and unit-tested by Debian's promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
DIR = Path(__file__).resolve().parents[2] / "dashboards"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool missing: run `make sysdeps` (Debian package prometheus)")
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=DIR / "prometheus")


def test_rules_are_valid() -> None:
    r = promtool("check", "rules", "computectl.rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_unit_tests_pass() -> None:
    r = promtool("test", "rules", "computectl.rules.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_queries_name_real_metrics_and_rules() -> None:
    board = json.loads((DIR / "grafana" / "computectl-fleet.json").read_text())
    rules = (DIR / "prometheus" / "computectl.rules.yml").read_text()
    for panel in board["panels"]:
        expr = panel["targets"][0]["expr"]
        assert "computectl_" in expr
        if ":" in expr.split("(")[-1]:
            assert expr.split("(")[-1].split(")")[0].strip() in rules
