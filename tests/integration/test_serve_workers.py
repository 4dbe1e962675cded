"""`computectl serve --workers 2` on the embedded default (SQLite, the simulated
datacenter): the API answers from worker processes that never act, a fatal result posted to
them is drained at once by the process that acts, and no worker outlives its `serve`
(stopped cleanly, or killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from compute.services.leadership import LEASE
from compute.store import Store, leases

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "computectl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[1] == str(pid):
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Serving:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        # Made before serve starts: both would set up the new data directory at once.
        made = subprocess.run(
            [str(BIN), "tokens", "create", "--role", "operator", "-o", "json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        self.token = json.loads(made.stdout)["token"]
        self.log = log
        argv = [str(BIN), "serve", "--port", str(self.port), "--workers", "2"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status), json.loads(r.read())

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if self.call("GET", "/readyz")[1].get("status") == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"serve --workers 2 not ready:\n{self.log.read_text()[-3000:]}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
    out.update(
        COMPUTECTL_DATA_DIR=str(tmp_path / "data"),
        COMPUTECTL_SIMULATION__RACKS="2",
        COMPUTECTL_SIMULATION__NODES_PER_RACK="16",
        COMPUTECTL_SIMULATION__FAULT_RATE_PER_NODE_HOUR="0",
        COMPUTECTL_SWEEP__INTERVAL_SECONDS="30",
    )
    return out


def test_workers_serve_the_api_and_the_acting_process_drains_what_they_were_told(
    env: dict[str, str], tmp_path: Path
) -> None:
    serving = Serving(env, tmp_path / "serve.log")
    try:
        serving.wait_ready()
        workers = _children(serving.proc.pid)
        assert len(workers) == 2, workers
        # Workers never act: the lease is the process serve started.
        ready = serving.call("GET", "/readyz")[1]
        assert ready["leadership"]["leading"] is False
        store = Store(create_engine(f"sqlite:///{tmp_path / 'data' / 'computectl.db'}"))
        try:
            lease = leases.current(store.engine, LEASE)
        finally:
            store.close()
        assert lease is not None and lease.holder.split(":")[1] == str(serving.proc.pid)
        nodes = serving.call("GET", "/api/v1/nodes?state=in_service")[1]["nodes"]
        assert nodes, "no node in service"
        name = nodes[0]["name"]
        now = serving.call("GET", "/api/v1/overview")[1]["now"]
        fatal = [
            {"check": "xid", "version": "1", "status": "fail", "fatal": True, "at": now,
             "evidence": "XID 79: GPU has fallen off the bus"},
        ]  # fmt: skip
        posted = time.monotonic()
        assert serving.call("POST", f"/api/v1/nodes/{name}/health", fatal)[0] == 202
        # Acted on at once (the next sweep is 30 s away), by the acting process.
        state = ""
        while time.monotonic() - posted < 15:
            state = serving.call("GET", f"/api/v1/nodes/{name}")[1]["state"]
            if state in ("draining", "drained"):
                break
            time.sleep(0.2)
        assert state in ("draining", "drained"), serving.log.read_text()[-3000:]
        events = serving.call("GET", f"/api/v1/events?node={name}")[1]["events"]
        assert [e["kind"] for e in events].count("drain") == 1, events
    finally:
        serving.proc.send_signal(signal.SIGINT)
        serving.proc.wait(60)
    assert not any(_alive(p) for p in workers), "a worker outlived serve"


def test_no_worker_outlives_a_serve_killed_with_sigkill(
    env: dict[str, str], tmp_path: Path
) -> None:
    serving = Serving(env, tmp_path / "serve.log")
    try:
        serving.wait_ready()
        workers = _children(serving.proc.pid)
        assert len(workers) == 2, workers
    finally:
        serving.proc.send_signal(signal.SIGKILL)
        serving.proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "a worker outlived a killed serve"
    # The port is free again: a restarted serve can bind it.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", serving.port))
