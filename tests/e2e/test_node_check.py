"""`computectl node check` as cron or Slurm runs it: exit codes, formats, reporting."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, free_port

pytestmark = pytest.mark.e2e


def test_exit_codes_and_formats(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("sweep")
    ok = cli("node", "check", "--source", "simulated", "--node", "gpu-002")
    assert ok.returncode == 0 and ok.stdout.count("ok ") == 9
    assert cli("sim", "inject", "gpu-002", "xid79", "--gpu", "6").returncode == 0
    textfile = tmp_path / "textfile" / "computectl.prom"
    bad = cli(
        "node",
        "check",
        "--source",
        "simulated",
        "--node",
        "gpu-002",
        "--format",
        "json",
        "--textfile",
        str(textfile),
    )
    assert bad.returncode == 3
    doc = json.loads(bad.stdout)
    assert doc["exit_code"] == 3
    failing = {r["check"] for r in doc["results"] if r["status"] == "fail"}
    assert failing == {"gpu_count", "xid"}
    prom = textfile.read_text()
    assert 'computectl_node_check_fatal{node="gpu-002",check="gpu_count",suite="passive"} 1' in prom
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=prom, text=True, capture_output=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    # The XID was reported once; the next run does not see it again, the missing GPU stays.
    again = json.loads(
        cli(
            "node", "check", "--source", "simulated", "--node", "gpu-002", "--format", "json"
        ).stdout
    )
    assert {r["check"] for r in again["results"] if r["status"] == "fail"} == {"gpu_count"}
    assert cli("sim", "inject", "gpu-003", "pcie_x8").returncode == 0
    assert cli("node", "check", "--source", "simulated", "--node", "gpu-003").returncode == 1


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    cli("sweep")
    r = cli("node", "check", "--source", "simulated", "--node", "gpu-404")
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown simulated node 'gpu-404'"
    r = cli("node", "check", "--source", "simulated", "--node", "gpu-001", "--suite", "burnin")
    assert r.returncode == 2 and "busy" in r.stderr


def test_report_to_a_running_control_plane(cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        "COMPUTECTL_DATA_DIR": str(data_dir),
        "COMPUTECTL_SWEEP__INTERVAL_SECONDS": "0",
    }
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        made = cli("tokens", "create", "--role", "operator", "-o", "json")
        auth = {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}
        urllib.request.urlopen(
            urllib.request.Request(base + "/api/v1/sweep", method="POST", headers=auth)
        )
        cli("sim", "inject", "gpu-005", "xid95", "--gpu", "1")
        # The node reports with its own credential, bound to it.
        node_token = json.loads(
            cli("tokens", "create", "--role", "node", "--node", "gpu-005", "-o", "json").stdout
        )["token"]
        token_file = data_dir / "node-token"
        token_file.write_text(node_token + "\n")
        token_file.chmod(0o600)
        r = cli(
            "node",
            "check",
            "--source",
            "simulated",
            "--node",
            "gpu-005",
            "--report",
            base,
            "--token-file",
            str(token_file),
        )
        assert r.returncode == 3, r.stderr
        node = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(base + "/api/v1/nodes/gpu-005", headers=auth)
            ).read()
        )
        assert node["finding"]["check"] == "xid" and node["finding"]["fatal"]
        r = cli(
            "node",
            "check",
            "--source",
            "simulated",
            "--node",
            "gpu-006",
            "--report",
            "http://127.0.0.1:1",
            "--token-file",
            str(token_file),
        )
        assert r.returncode == 4 and r.stderr.startswith("error: report failed:")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
