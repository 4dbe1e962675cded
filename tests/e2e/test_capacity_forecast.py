"""`computectl capacity --forecast` as an operator runs it: on the data directory and through
`computectl serve` (the same view), tables and JSON, one-line refusals with exit 2."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, free_port
from tests.e2e.test_remote_cli import get, operator_token

pytestmark = pytest.mark.e2e

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_forecast_tables_and_json(cli: Cli) -> None:
    assert cli("sweep").returncode == 0
    assert cli("sweep").returncode == 0
    plain = cli("capacity")  # without --forecast: as it was
    assert plain.returncode == 0 and "GPUs by state" in plain.stdout
    assert "Power per rack" not in plain.stdout
    r = cli("capacity", "--forecast", "--add", "4:H100-SXM:hall-a")
    assert r.returncode == 0, r.stderr
    for title in ("Free GPUs", "Power per rack", "Power per room", "N-1"):
        assert title in r.stdout
    assert "+4 x H100-SXM in hall-a" in r.stdout
    view = json.loads(cli("capacity", "--forecast", "-o", "json").stdout)
    assert {r["rack"] for r in view["racks"]} == {"r01", "r02", "r03", "r04"}
    assert sum(f["installed"] for f in view["free"]) == 256
    (room,) = view["rooms"]
    assert room["room"] == "hall-a" and room["limit_watts"] == 160_000.0
    assert {n["pool"] for n in view["n_minus_one"]} == {"training", "inference"}
    # Simulated racks r01 and r02 draw more than their 40 kW: over, and said so.
    assert {r["rack"] for r in view["racks"] if r["over_budget"]} == {"r01", "r02"}


BAD = [
    (("--forecast", "--add", "four:H100-SXM:hall-a"), "error: --add 'four:H100-SXM:hall-a'"),
    (("--forecast", "--add", "0:H100-SXM:hall-a"), "error: --add '0:H100-SXM:hall-a'"),
    (("--forecast", "--add", "4:H100-SXM:hall-z"), "error: --add: unknown room 'hall-z'"),
    (("--forecast", "--add", "4:X9000:hall-a"), "error: --add: no power figure"),
    (("--add", "4:H100-SXM:hall-a"), "error: --add goes with --forecast"),
]


def test_bad_additions_are_one_line_exit_2(cli: Cli) -> None:
    assert cli("sweep").returncode == 0  # the rooms are known
    for args, message in BAD:
        r = cli("capacity", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(message), (args, r.stderr)


def test_the_api_answers_the_same_view(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    assert cli("sweep").returncode == 0
    env = {"COMPUTECTL_SWEEP__INTERVAL_SECONDS": "86400"}
    token = operator_token({"COMPUTECTL_DATA_DIR": str(data_dir)})
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    import os

    full = {**os.environ, "COMPUTECTL_DATA_DIR": str(data_dir), **env}
    full.pop("COMPUTECTL_TOKEN", None)
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=full
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if get(url + "/readyz", token) == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()
            time.sleep(0.5)
        args = ("capacity", "--forecast", "--add", "2:B200:hall-a", "-o", "json")
        here = cli(*args)
        there = cli("--server", url, *args, env={"COMPUTECTL_TOKEN": token or ""})
        assert there.returncode == 0, there.stderr
        assert json.loads(there.stdout) == json.loads(here.stdout)
        refused = cli(
            "--server",
            url,
            "capacity",
            "--forecast",
            "--add",
            "2:B200:nowhere",
            env={"COMPUTECTL_TOKEN": token or ""},
        )
        assert refused.returncode == 2 and "unknown room 'nowhere'" in refused.stderr
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
