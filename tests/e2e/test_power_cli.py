"""`computectl power` through a running control plane, the node check as the node's agent:
cap -> `node check --report` applies it (simulated GPUs) -> read back -> revert -> restored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import BIN, free_port


def test_cap_applied_by_the_node_check_and_reverted(cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
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
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        operator = json.loads(cli("tokens", "create", "--role", "operator", "-o", "json").stdout)
        remote = {"COMPUTECTL_TOKEN": operator["token"]}
        assert cli("--server", base, "sweep", env=remote).returncode == 0
        node_token = json.loads(
            cli("tokens", "create", "--role", "node", "--node", "gpu-003", "-o", "json").stdout
        )["token"]
        token_file = data_dir / "node-token"
        token_file.write_text(node_token + "\n")
        token_file.chmod(0o600)
        check = ("node", "check", "--source", "simulated", "--node", "gpu-003", "--report", base,
                 "--token-file", str(token_file))  # fmt: skip

        r = cli("--server", base, "power", "cap", "gpu-003", "--watts", "250", "--gpus", "1,2",
                "--reason", "e2e", "--for", "1h", "-o", "json", env=remote)  # fmt: skip
        assert r.returncode == 0, r.stderr
        (cap,) = json.loads(r.stdout)
        assert cap["state"] == "pending" and cap["gpus"] == [1, 2]

        r = cli(*check, env={"COMPUTECTL_POWER__IPMITOOL": "false"})
        assert r.returncode in (0, 1), r.stderr
        assert f"power: power cap {cap['id']}: apply done" in r.stderr

        r = cli("--server", base, "power", "show", "gpu-003", "-o", "json", env=remote)
        shown = json.loads(r.stdout)
        gpus = shown["reading"]["gpus"]
        assert [g["limit_watts"] for g in gpus[:4]] == [700.0, 250.0, 250.0, 700.0]
        (applied,) = shown["caps"]
        assert applied["state"] == "applied" and applied["after"] == {"1": 250.0, "2": 250.0}

        r = cli("--server", base, "power", "list", env=remote)
        assert r.returncode == 0 and "applied" in r.stdout and "gpu-003" in r.stdout
        # A second cap beyond a GPU's range is refused before it is sent.
        r = cli("--server", base, "power", "cap", "gpu-003", "--watts", "250", "--gpus", "40",
                env=remote)  # fmt: skip
        assert r.returncode == 2 and r.stderr.startswith("Usage:") is False

        r = cli("--server", base, "power", "revert", "gpu-003", "--reason", "done", env=remote)
        assert r.returncode == 0 and "reverting" in r.stdout
        r = cli(*check, env={"COMPUTECTL_POWER__IPMITOOL": "false"})
        assert f"power: power cap {cap['id']}: revert done" in r.stderr
        r = cli("--server", base, "power", "list", "--all", "-o", "json", env=remote)
        (done,) = json.loads(r.stdout)
        assert done["state"] == "reverted" and done["after"] == {"1": 700.0, "2": 700.0}
        r = cli("audit", "-o", "json")
        assert r.returncode == 0 and "power.revert" in r.stdout
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
