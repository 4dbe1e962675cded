"""Benchmark: `computectl sweep` as the product runs it, on a large simulated site.

    python benchmarks/sweep_bench.py [--racks 160 --nodes-per-rack 64] [--steady 3]
                                     [--firsts 1] [--in-process] [--write benchmarks/RESULTS.md]

A fresh data directory and a config file naming it (160 racks x 64 nodes = 10,240 nodes,
81,920 GPUs by default; everything else the defaults); then `computectl sweep` run as a
process, as cron or an operator would: the first sweep adopts every node and acts on it,
then ``--steady`` sweeps each after the simulated world moved a minute on (this process
advances it through the same state file, as `serve` would; 1 % of the nodes get a fault
before the first). Each run's wall time, its own figure for the sweep (without start-up)
and its peak RSS (wait4's rusage of that child). Then GET /metrics on the control plane's
HTTP app over that data directory (in process, through the ASGI app: no loop acting
beside it). ``--in-process`` adds the sweep through ``compute.testing.make_runtime`` with
no state file, the path this benchmark measured before, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

FAULTS = ("xid79", "xid48", "nvlink_down", "pcie_x8", "row_remap_failure", "thermal_throttle")
CLI = ROOT / ".venv" / "bin" / "computectl"


def _config(data_dir: Path, racks: int, per_rack: int) -> Path:
    path = data_dir / "computectl.toml"
    text = (
        f'data_dir = "{data_dir}"\n\n[simulation]\nracks = {racks}\nnodes_per_rack = {per_rack}\n'
    )
    if "metrics_public" in _server_fields():
        # /metrics as Prometheus scrapes it where it is left open (no credential to make).
        text += "\n[server]\nmetrics_public = true\n"
    path.write_text(text)
    return path


def _server_fields() -> set[str]:
    from compute.config_sections import ServerSettings

    return set(ServerSettings.model_fields)


def _sweep(config: Path) -> dict[str, Any]:
    """One `computectl sweep --output json` process: its report, wall time and peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
    env["COMPUTECTL_CONFIG"] = str(config)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(CLI), "sweep", "--output", "json"], env=env, stdout=out, stderr=err
        )
        # wait4, not wait: the rusage of this child alone (its own peak RSS).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"computectl sweep failed ({proc.returncode}): {errors[-2000:]}")
    report = json.loads(text)
    figures = {
        "wall_seconds": round(wall, 2),
        "sweep_seconds": round(float(report["duration_seconds"]), 2),
        # CPU time (user + system): what the wall time would be alone on the machine, less
        # what was spent waiting on the disk.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "nodes": report["nodes"],
        "results": report["results"],
        "actions": len(report["actions"]),
        "deferred": len(report["deferred"]),
        "timings": report.get("timings", {}),
    }
    print(json.dumps(figures), file=sys.stderr, flush=True)  # each run as it ends
    return figures


def _world(config: Path) -> Any:
    from compute.config import load_settings
    from compute.simulation.wiring import datacenter

    settings = load_settings(config, env={})
    return datacenter(settings, settings.effective_pools)


def _metrics(config: Path, times: int = 3) -> list[float]:
    from fastapi.testclient import TestClient

    from compute.api import create_app
    from compute.config import load_settings
    from compute.runtime import Runtime

    rt = Runtime.build(load_settings(config, env={}))
    took = []
    with TestClient(create_app(rt)) as client:
        for _ in range(times):
            t0 = time.perf_counter()
            r = client.get("/metrics")
            took.append(round(time.perf_counter() - t0, 3))
            if r.status_code != 200:  # a build that wants a credential for it: not timed
                print(f"/metrics: {r.status_code} {r.text[:200]}", file=sys.stderr)
                rt.close()
                return []
    rt.close()
    return took


def run_process(racks: int, per_rack: int, steady: int, firsts: int = 1) -> dict[str, Any]:
    # Further first sweeps each on a fresh site of their own (a first sweep is one run of
    # seconds on a shared machine: one figure alone says little).
    others = []
    for _ in range(firsts - 1):
        with tempfile.TemporaryDirectory() as tmp:
            others.append(_sweep(_config(Path(tmp), racks, per_rack)))
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), racks, per_rack)
        first = _sweep(config)
        dc = _world(config)
        names = sorted(dc.fleet.nodes)
        for i, name in enumerate(names[::100]):
            dc.inject(name, FAULTS[i % len(FAULTS)], gpu=i % 8)
        steadies = []
        for _ in range(steady):
            dc.advance(60)
            steadies.append(_sweep(config))
        metrics = _metrics(config)
    return {
        "first": first,
        "firsts": [first, *others],
        "steady": steadies,
        "metrics_seconds": metrics,
    }


def run_in_process(racks: int, per_rack: int) -> dict[str, Any]:
    from compute.testing import make_runtime

    with tempfile.TemporaryDirectory() as tmp:
        rt = make_runtime(Path(tmp), persist=False, racks=racks, nodes_per_rack=per_rack)
        t0 = time.perf_counter()
        rt.sweep()
        first = time.perf_counter() - t0
        assert rt.datacenter is not None
        rt.datacenter.advance(60)
        t1 = time.perf_counter()
        rt.sweep()
        steady = time.perf_counter() - t1
        rt.close()
    return {"first_seconds": round(first, 2), "steady_seconds": round(steady, 2)}


def write(path: Path, racks: int, per_rack: int, r: dict[str, Any], label: str) -> None:
    first, steady = r["first"], r["steady"]
    walls = [s["wall_seconds"] for s in steady]
    inproc = r.get("in_process")
    beside = f"{inproc['first_seconds']} / {inproc['steady_seconds']} s" if inproc else "-"
    firsts = r.get("firsts") or [first]
    more = (
        f"; {len(firsts)} first sweeps: {min(f['wall_seconds'] for f in firsts)}-"
        f"{max(f['wall_seconds'] for f in firsts)} s wall, median "
        f"{statistics.median(f['wall_seconds'] for f in firsts)}"
        if len(firsts) > 1
        else ""
    )
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {label} | "
        f"{racks * per_rack:,} nodes ({racks}x{per_rack}) | "
        f"{first['wall_seconds']} s, CPU {first['cpu_seconds']} s ({first['sweep_seconds']} s "
        f"sweep, {first['actions']} actions{more}) | {', '.join(f'{w}' for w in walls)} s, CPU "
        f"{', '.join(str(s['cpu_seconds']) for s in steady)} s (median wall "
        f"{statistics.median(walls) if walls else '-'}) | "
        f"{max([*[f['peak_rss_mb'] for f in firsts], *[s['peak_rss_mb'] for s in steady]])} MB | "
        f"{_span(r['metrics_seconds'])} | "
        f"{beside} |"
    )
    add_row(path, "<!-- sweep process rows -->", SECTION, row)


def _span(took: list[float]) -> str:
    return f"{min(took)}-{max(took)} s" if took else "-"


SECTION = """
## `computectl sweep` as a process on a simulated site (`benchmarks/sweep_bench.py`)

Target (issue 11): first sweep (adoption, acting on every node) and steady sweeps each
< 5 s wall and < 500 MB, on 10,240 nodes (160 racks x 64); `/metrics` for that fleet
< 1 s. Wall is the whole process (start-up included), CPU its user + system time (the
figure that holds on a loaded machine); in process: the same sweeps
through `make_runtime` with no state file, first / steady.

| date | machine | build | fleet | first sweep | steady sweeps | peak RSS | /metrics | in process |
|---|---|---|---|---|---|---|---|---|
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--racks", type=int, default=160)
    p.add_argument("--nodes-per-rack", type=int, default=64)
    p.add_argument("--steady", type=int, default=3)
    p.add_argument("--firsts", type=int, default=1, help="first sweeps, each on a fresh site")
    p.add_argument("--in-process", action="store_true")
    p.add_argument("--label", default="", help="what was measured (a commit, before/after)")
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    r = run_process(a.racks, a.nodes_per_rack, a.steady, max(1, a.firsts))
    if a.in_process:
        r["in_process"] = run_in_process(a.racks, a.nodes_per_rack)
    print(json.dumps(r, indent=2))
    if a.write:
        write(a.write, a.racks, a.nodes_per_rack, r, a.label)


if __name__ == "__main__":
    main()
