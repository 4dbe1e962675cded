"""`computectl serve` as a process for benchmarks/api_load_bench.py: started on a fresh data
directory (or an emptied PostgreSQL database), with a token, the sweeps it ran (from the
store's last_sweep record) and its CPU by process (the acting one, each API worker)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.api_load_probe import SITECUSTOMIZE

CLI = Path(sys.executable).parent / "computectl"
ROOT = Path(__file__).resolve().parents[1]


class Serve:
    """`computectl serve` as a process on the embedded default."""

    def __init__(self, data_dir: Path, a: argparse.Namespace) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
        env.update(
            COMPUTECTL_DATA_DIR=str(data_dir),
            COMPUTECTL_SIMULATION__RACKS=str(a.racks),
            COMPUTECTL_SIMULATION__NODES_PER_RACK=str(a.nodes_per_rack),
            COMPUTECTL_SWEEP__INTERVAL_SECONDS=str(a.sweep_interval),
        )
        self.url = a.postgres or f"sqlite:///{data_dir / 'computectl.db'}"
        # ``--code DIR``: serve runs that tree's code (an A/B against a checkout of another
        # commit, under the same bench and probe); the probe itself comes from ROOT.
        path = [str(a.code.resolve())] if a.code else []
        if a.probe:
            # Every process of serve records where its time goes (api_load_probe.py).
            site = data_dir / "probe-site"
            site.mkdir()
            (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
            # Beside it, whichever tree serve runs (--code).
            shutil.copy(Path(__file__).with_name("api_load_probe.py"), site)
            a.probe.mkdir(parents=True, exist_ok=True)
            path = [str(site), *path, str(ROOT)]
            env["API_LOAD_PROBE_DIR"] = str(a.probe.resolve())
        if path:
            env["PYTHONPATH"] = os.pathsep.join(path)
        if a.postgres:
            empty(a.postgres)
            env["COMPUTECTL_DATABASE_URL"] = a.postgres
        self.token = a.token or mint_token(env)
        self.log = data_dir / "serve.log"
        argv = [str(CLI), "serve", "--port", str(self.port), "--threads", str(a.threads)]
        argv += ["--workers", str(a.workers_api)]
        if a.switch_ms:
            argv += ["--switch-ms", str(a.switch_ms)]
        if a.profile:
            argv = [sys.executable, str(Path(__file__).with_name("serve_sampler.py")), *argv[1:]]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if self.get("/readyz").get("status") == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("timed out waiting for serve's first sweep")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def empty(url: str) -> None:
    """A throw-away PostgreSQL database, emptied: serve migrates it from nothing."""
    from sqlalchemy import create_engine, text

    with create_engine(url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


def mint_token(env: dict[str, str]) -> str:
    """An operator token made on the data directory, as an operator would make one."""
    argv = [str(CLI), "tokens", "create", "--role", "operator", "--name", "api-load-bench"]
    made = subprocess.run([*argv, "-o", "json"], env=env, capture_output=True, text=True)
    if made.returncode:
        raise SystemExit(f"computectl tokens create: {made.stderr.strip()[-2000:]}")
    return str(json.loads(made.stdout)["token"])


def watch_sweeps(url: str, stop: threading.Event, seen: dict[float, float]) -> None:
    """Every sweep's (end wall time: duration), from the store's last_sweep record."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url)
    query = text("SELECT value FROM meta WHERE key = 'last_sweep'")
    try:
        while not stop.wait(0.2):
            try:
                with engine.connect() as conn:
                    value = conn.execute(query).scalar()
            except SQLAlchemyError:
                continue
            if value:
                v = json.loads(value) if isinstance(value, str) else value
                seen[float(v["wall_at"])] = float(v["duration_seconds"])
    finally:
        engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live children (serve's API
    workers), Linux."""
    return sum(cpu_by_process(pid).values())


def cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds so far of a process and of each of its live children."""

    def stat(p: str) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = stat(entry)
        except OSError:
            continue
        if entry == str(pid) or fields[1] == str(pid):
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out
