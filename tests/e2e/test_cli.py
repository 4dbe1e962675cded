"""The CLI as an operator uses it: tables, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_sweep_list_drain_resume_capacity(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("sweep").returncode == 0
    assert cli("sweep").returncode == 0
    nodes = json.loads(cli("nodes", "list", "-o", "json").stdout)
    assert len(nodes) == 32
    r = cli("nodes", "drain", "gpu-006", "--reason", "swap NIC")
    assert r.returncode == 0 and "computectl: operator: swap NIC" in r.stdout
    listed = (
        cli("nodes", "list", "--state", "draining").stdout
        + cli("nodes", "list", "--state", "drained").stdout
    )
    assert "gpu-006" in listed and "computectl: operator: swap NIC" in listed
    shown = cli("nodes", "show", "gpu-006")
    assert shown.returncode == 0 and "swap NIC" in shown.stdout
    events = json.loads(cli("events", "--node", "gpu-006", "-o", "json").stdout)
    assert events[0]["kind"] in ("drain", "drained") and events[0]["actor"].startswith("operator:")
    assert cli("nodes", "resume", "gpu-006", "--skip-burn-in").returncode == 0
    cap = json.loads(cli("capacity", "-o", "json").stdout)
    assert cap["total_gpus"] == cap["installed_gpus"] == 256
    table = cli("capacity").stdout
    assert "total" in table and "256" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nodes", "show", "gpu-999"), "error: unknown node 'gpu-999'"),
        (("nodes", "drain", "gpu-999", "--reason", "x"), "error: unknown node 'gpu-999'"),
        (("nodes", "list", "--state", "sideways"), "error: Invalid value for '--state'"),
        (("sim", "inject", "gpu-001", "xid80"), "error: unknown fault 'xid80'"),
        (("events", "--node", "gpu-999"), "error: unknown node 'gpu-999'"),
    ],
)
def test_user_errors_are_one_red_line_and_exit_2(
    cli,
    args: tuple[str, ...],  # type: ignore[no-untyped-def]
    message: str,
) -> None:
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr


def test_typo_in_config_file_is_one_line_and_changes_nothing(
    cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    data_dir: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[remediation]\nconsecutive_failure = 2\n")
    r = cli("--config", str(bad), "sweep")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: invalid configuration in {bad}: unknown setting 'remediation.consecutive_failure'"
    )
    assert not data_dir.exists()
    r = cli("sweep", env={"COMPUTECTL_CONFIG": str(bad)})
    assert r.returncode == 2 and "consecutive_failure" in r.stderr


def test_refusals_are_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    cli("sweep")
    r = cli("nodes", "resume", "gpu-001")
    assert r.returncode == 2 and r.stderr.strip() == "error: gpu-001 is in service, not drained"


def test_config_show(cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli(
        "config",
        "show",
        "-o",
        "json",
        env={"COMPUTECTL_SWEEP__INTERVAL_SECONDS": "7"},
    )
    shown = json.loads(r.stdout)
    assert shown["sweep"]["interval_seconds"] == 7
    assert shown["data_dir"] == str(data_dir)
    assert [p["name"] for p in shown["pools"]] == ["training", "inference"]
    assert "remediation.drain_budget_fraction" in cli("config", "show").stdout
