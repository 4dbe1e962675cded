"""Benchmark: GET /metrics on 10,000 nodes / 80,000 GPUs (issue 14's target: under 1 s).

    python benchmarks/metrics_bench.py [--racks 250 --nodes-per-rack 40] [--times 5]
                                       [--write benchmarks/RESULTS.md] [--label TEXT]

The embedded default on a fresh data directory (250 racks x 40 nodes x 8 GPUs by default,
[server] metrics_public), brought to a working state as the product gets there: a first
`computectl sweep` process adopts every node, 1 % of the nodes get a fault, the world moves
a minute on and a second sweep drains them. Then /metrics three ways:

- over HTTP from a real `computectl serve` (no sweep due during the scrapes): the wall time
  of each GET and the CPU time (user + system) serve and its workers spent on it, read from
  /proc before and after (of serve's API worker: serve itself runs the loop and the
  simulated world beside it);
- in process: the collector as /metrics runs it (prometheus_client's generate_latest over
  the registry serve builds), wall and CPU;
- beside them, Prometheus' own parser on the same body: `promtool check metrics` (wall).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402
from benchmarks.sweep_bench import CLI, FAULTS, _config, _sweep, _world  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid``'s live descendants: serve's API worker, which
    answers /metrics (serve itself runs the loop and the simulated world beside it)."""
    parent, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    total = 0
    for p, t in ticks.items():
        q = p
        while q > 1 and q != pid:
            q = parent.get(q, 0)
        if q == pid and p != pid:
            total += t
    return total / TICK


def prepare(config: Path) -> dict[str, Any]:
    first = _sweep(config)
    dc = _world(config)
    for i, name in enumerate(sorted(dc.fleet.nodes)[::100]):
        dc.inject(name, FAULTS[i % len(FAULTS)], gpu=i % 8)
    dc.advance(60)
    second = _sweep(config)
    return {"nodes": first["nodes"], "drains": second["actions"]}


def over_http(config: Path, times: int) -> dict[str, Any]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
    # No sweep due while the scrapes are timed: they are what is measured.
    env.update(COMPUTECTL_CONFIG=str(config), COMPUTECTL_SWEEP__INTERVAL_SECONDS="86400")
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            return _scrapes(proc, port, times)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _scrapes(proc: subprocess.Popen[bytes], port: int, times: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("computectl serve did not answer /metrics")
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                r.read()
            break
        except OSError:
            time.sleep(1)
    walls, cpus, body = [], [], b""
    for _ in range(times):
        c0, t0 = _cpu(proc.pid), time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:
            body = r.read()
        walls.append(round(time.perf_counter() - t0, 3))
        time.sleep(0.2)  # the scrape's CPU is booked when the process is next read
        cpus.append(round(_cpu(proc.pid) - c0, 3))
    text = body.decode()
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return {
        "wall_seconds": walls,
        "cpu_seconds": cpus,
        "bytes": len(body),
        "samples": samples,
        "body": text,
    }


def in_process(config: Path, times: int) -> dict[str, Any]:
    from prometheus_client import generate_latest

    from compute.config import load_settings
    from compute.metrics import metrics_registry
    from compute.runtime import Runtime
    from compute.services.leadership import Leadership

    rt = Runtime.build(load_settings(config, env={}))
    rt.leadership = Leadership(rt.store, ttl=30)  # as serve wires it
    try:
        registry = metrics_registry(rt)
        walls, cpus = [], []
        for _ in range(times):
            c0, t0 = time.process_time(), time.perf_counter()
            generate_latest(registry)
            walls.append(round(time.perf_counter() - t0, 3))
            cpus.append(round(time.process_time() - c0, 3))
    finally:
        rt.close()
    return {"wall_seconds": walls, "cpu_seconds": cpus}


def promtool(body: str) -> dict[str, Any]:
    tool = shutil.which("promtool")
    if tool is None:
        return {}
    t0 = time.perf_counter()
    r = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, text=True)
    wall = round(time.perf_counter() - t0, 3)
    lint = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    return {"wall_seconds": wall, "exit": r.returncode, "lint": lint[:20]}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(racks: int, per_rack: int, times: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), racks, per_rack)
        state = prepare(config)
        load_before = load()
        http = over_http(config, times)
        inproc = in_process(config, times)
        beside = promtool(http.pop("body"))
        return {
            **state,
            "gpus": racks * per_rack * 8,
            "http": http,
            "in_process": inproc,
            "promtool": beside,
            "load_average": f"{load_before} -> {load()}",
        }


SECTION = """
## `/metrics` on 10,000 nodes / 80,000 GPUs (`benchmarks/metrics_bench.py`)

Target (issue 14): `/metrics` for 10,000 nodes / 80,000 GPUs renders in under 1 s. The
embedded default (250 racks x 40 nodes x 8 GPUs) after an adopting sweep and a sweep that
drains 1 % of the nodes; over HTTP: a real `computectl serve`, the GET's wall and the CPU
serve spent on it; in process: the collector through generate_latest; promtool: Prometheus'
parser (`promtool check metrics`) on the same body.

| date | machine | build | load | fleet | GET wall | GET CPU | in process wall/CPU | body | parse |
|---|---|---|---|---|---|---|---|---|---|
"""


def _span(xs: list[float]) -> str:
    return f"{min(xs)}-{max(xs)} s (median {statistics.median(xs)})" if xs else "-"


def write(path: Path, r: dict[str, Any], label: str) -> None:
    http, inproc, pt = r["http"], r["in_process"], r["promtool"]
    lint = "clean" if pt and not pt["lint"] else f"{len(pt.get('lint', []))} lint lines"
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {label} | {r['load_average']} | "
        f"{r['nodes']:,} nodes, {r['gpus']:,} GPUs, {r['drains']} acted on in the second sweep | "
        f"{_span(http['wall_seconds'])} | {_span(http['cpu_seconds'])} | "
        f"{_span(inproc['wall_seconds'])} / {_span(inproc['cpu_seconds'])} | "
        f"{http['bytes']:,} bytes, {http['samples']:,} samples | "
        f"{pt.get('wall_seconds', '-')} s, {lint} |"
    )
    add_row(path, "<!-- metrics bench rows -->", SECTION, row)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--racks", type=int, default=250)
    p.add_argument("--nodes-per-rack", type=int, default=40)
    p.add_argument("--times", type=int, default=5)
    p.add_argument("--label", default="", help="what was measured (a commit, before/after)")
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    r = run(a.racks, a.nodes_per_rack, a.times)
    print(json.dumps(r, indent=2))
    if a.write:
        write(a.write, r, a.label)


if __name__ == "__main__":
    main()
