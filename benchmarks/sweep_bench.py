"""Benchmark: one sweep over a large simulated fleet — time to ingest and decide, peak RSS.

    python benchmarks/sweep_bench.py --nodes 10000 [--write benchmarks/RESULTS.md]

The fleet is built in memory (8 GPUs per node, 8 nodes per rack), adopted by a
first sweep, then 1 % of its nodes get a fault and one steady-state sweep is
timed: read telemetry of every GPU, run the seven passive checks, store every
result, fold them into each node's history, decide, and act within each
pool's drain budget. Run it as its own process: peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402
from compute.testing import make_runtime  # noqa: E402

FAULTS = ("xid79", "xid48", "nvlink_down", "pcie_x8", "row_remap_failure", "thermal_throttle")


def run(nodes: int) -> dict[str, float | int | str]:
    racks = max(1, nodes // 8)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rt = make_runtime(
            Path(tmp),
            persist=False,
            racks=racks,
            nodes_per_rack=8,
            inference_racks=max(1, racks // 4),
            config={"remediation": {"new_nodes": "in_service"}},
        )
        built = time.perf_counter() - t0
        t1 = time.perf_counter()
        first = rt.sweep()
        cold = time.perf_counter() - t1
        assert rt.datacenter is not None
        names = sorted(rt.datacenter.fleet.nodes)
        faulty = names[::100]
        for i, name in enumerate(faulty):
            rt.datacenter.inject(name, FAULTS[i % len(FAULTS)], gpu=i % 8)
        rt.datacenter.advance(60)
        t2 = time.perf_counter()
        report = rt.sweep()
        steady = time.perf_counter() - t2
        # Every 10 minutes a sweep also stores every passing result: the worst case.
        rt.datacenter.advance(600)
        t3 = time.perf_counter()
        full = rt.sweep()
        full_seconds = time.perf_counter() - t3
        rt.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "nodes": nodes,
        "gpus": nodes * 8,
        "results_per_sweep": report.results,
        "build_seconds": round(built, 2),
        "first_sweep_seconds": round(cold, 2),
        "sweep_seconds": round(steady, 2),
        "stored_results": report.stored_results,
        "full_store_sweep_seconds": round(full_seconds, 2),
        "full_store_results": full.stored_results,
        "actions": len(report.actions),
        "deferred": len(report.deferred),
        "faulty_nodes": len(faulty),
        "peak_rss_mb": round(rss_mb),
        "timings": str(report.timings),
        "first_sweep_results": first.results,
    }


def write(path: Path, r: dict[str, float | int | str]) -> None:
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {r['nodes']:,} nodes / "
        f"{r['gpus']:,} GPUs | {r['sweep_seconds']} s ({r['stored_results']:,} stored); "
        f"{r['full_store_sweep_seconds']} s storing all {r['full_store_results']:,} | "
        f"{r['peak_rss_mb']} MB | {r['first_sweep_seconds']} s | "
        f"{r['results_per_sweep']:,} results judged, {r['actions']} actions, "
        f"{r['deferred']} deferred; {r['timings']} |"
    )
    add_row(path, "<!-- sweep rows -->", SECTION, row)


SECTION = """
## Sweep over a simulated fleet (`benchmarks/sweep_bench.py`)

Target: < 5 s and < 500 MB for 10,000 nodes (80,000 GPUs) on a 2-core machine.

| date | machine | fleet | steady sweep | peak RSS | first sweep (adoption) | detail |
|---|---|---|---|---|---|---|
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    r = run(a.nodes)
    for k, v in r.items():
        print(f"{k:>22}: {v}")
    if a.write:
        write(a.write, r)


if __name__ == "__main__":
    main()
