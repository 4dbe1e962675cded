"""`computectl nodes list` on the data directory prints the same bytes whether it read the
SQLite file itself (the fast read, compute/client/sqlite_reads.py) or through the settings,
SQLAlchemy and the store (the full path): piped, as JSON, and drawn for a terminal, on a
swept simulated fleet with drained nodes, findings and a reason in another script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compute.config_defaults import STORE_FILE

pytestmark = pytest.mark.e2e

# The console script, noting at exit which of the libraries the fast read does without it
# loaded (SQLAlchemy: the full path ran).
HEAVY = ("sqlalchemy", "pydantic", "fastapi", "rich")
PROBE = f"""
import atexit, sys
note = sys.argv.pop(1)
def _loaded() -> None:
    with open(note, "w") as f:
        f.write(" ".join(m for m in {HEAVY!r} if m in sys.modules))
atexit.register(_loaded)
sys.argv[0] = "computectl"
from compute.cli.main import main
main()
"""
# A setting the fast read does not read (its default value): the full path answers.
FULL = {"COMPUTECTL_SWEEP__INTERVAL_SECONDS": "60"}


def _env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMPUTECTL_") and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")
    }
    return {
        **keep,
        "COMPUTECTL_CLIENT_CONFIG": str(data_dir.parent / "no-client-config.toml"),
        "COMPUTECTL_DATA_DIR": str(data_dir),
        **extra,
    }


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """(stdout, "fast" or "full") of one `computectl` process on the data directory."""
    out, loaded = run_loading(data_dir, *args, env=env)
    return out, "full" if "sqlalchemy" in loaded else "fast"


def run_loading(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[str, set[str]]:
    """(stdout, which of HEAVY it loaded) of one `computectl` process on the data directory."""
    note = data_dir.parent / "which-path"
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(note), *args],
        capture_output=True,
        text=True,
        env=_env(data_dir, env or {}),
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout, set(note.read_text().split())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("fleet") / "data"
    run(data_dir, "sweep")
    run(data_dir, "sim", "inject", "gpu-003", "xid79")
    run(data_dir, "sweep")
    run(data_dir, "nodes", "drain", "gpu-006", "--reason", "swap NIC: 交換 (Ünïcode)")
    run(data_dir, "nodes", "drain", "gpu-007", "--reason", "cable check")
    return data_dir


@pytest.mark.parametrize(
    "args",
    [
        ("nodes", "list"),
        ("nodes", "list", "-o", "json"),
        ("nodes", "list", "--pool", "inference"),
        ("nodes", "list", "--state", "drained"),
        ("nodes", "list", "--state", "draining", "--pool", "training"),
        ("nodes", "list", "--state", "in_service", "-o", "json"),
    ],
)
def test_the_fast_read_prints_what_the_full_path_prints(fleet: Path, args: tuple[str, ...]) -> None:
    fast, which = run(fleet, *args)
    assert which == "fast"
    full, which = run(fleet, *args, env=FULL)
    assert which == "full"
    assert fast == full and fast.strip()


def test_the_listing_has_what_the_comparison_needs(fleet: Path) -> None:
    listing, _ = run(fleet, "nodes", "list")
    assert "交換" in listing  # rich lays this table out, on both paths
    plain, loaded = run_loading(fleet, "nodes", "list", "--state", "drained")
    assert plain.isascii() and not loaded  # and the fast one this one, without rich
    assert " drained " in listing and "cable check" in listing


def test_a_terminal_gets_the_same_drawn_table(fleet: Path) -> None:
    drawn = {"TTY_COMPATIBLE": "1", "COLUMNS": "150"}
    fast, which = run(fleet, "nodes", "list", env=drawn)
    assert which == "fast" and "\x1b[" in fast
    full, which = run(fleet, "nodes", "list", env={**drawn, **FULL})
    assert which == "full" and fast == full


def test_a_configuration_file_takes_the_full_path(fleet: Path, tmp_path: Path) -> None:
    config = tmp_path / "computectl.toml"
    config.write_text(f"data_dir = {str(fleet)!r}\n")
    fast, _ = run(fleet, "nodes", "list")
    full, which = run(fleet, "nodes", "list", env={"COMPUTECTL_CONFIG": str(config)})
    assert which == "full" and full == fast


def test_a_new_data_directory_takes_the_full_path(tmp_path: Path) -> None:
    data_dir = tmp_path / "new"
    out, which = run(data_dir, "nodes", "list")
    assert which == "full" and out.split() == [
        "node",
        "pool",
        "rack",
        "gpus",
        "state",
        "jobs",
        "reason",
    ]
    assert (data_dir / STORE_FILE).is_file()
    again, which = run(data_dir, "nodes", "list")
    assert which == "fast" and again == out
