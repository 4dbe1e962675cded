"""Benchmark: detection to drain on the simulated datacenter, in process.

    python benchmarks/attention_bench.py [--trials 50] [--sweeping] [--racks 4]
        [--write benchmarks/RESULTS.md]

The real API app (FastAPI's TestClient) takes a node's POST of a fatal result; a thread does
what `serve`'s loop does with attention (waits on Runtime.attention, then act_on_attention);
the time is from the POST to the node drained in the simulated workload manager (its reason
set). With --sweeping, another thread sweeps back to back the whole time: a fatal result
must not wait behind a sweep. Each node drained is resumed before the next trial, so the
pool's drain budget never holds one back, and the simulated clock moves an hour on, so
the brake never takes them for a shared cause. The real Slurm and Kubernetes figures are
benchmarks/remediation_latency_bench.py's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

BRAKE_WINDOW_SECONDS = 3600.0

SECTION = """
## Detection to drain, simulated, in process (`benchmarks/attention_bench.py`)

From a node's POST of a fatal result to the node drained in the simulated workload manager.

| date | machine | nodes | trials | sweeps running | p50 | p99 | max |
|---|---|---|---|---|---|---|---|
"""


def run(trials: int, sweeping: bool, racks: int = 4) -> dict[str, float | int]:
    from fastapi.testclient import TestClient

    from compute.api import create_app
    from compute.testing import make_runtime

    with tempfile.TemporaryDirectory() as tmp:
        rt = make_runtime(
            Path(tmp),
            {"remediation": {"new_nodes": "in_service"}},
            persist=False,
            racks=racks,
            inference_racks=max(1, racks // 4),
        )
        rt.sweep()
        assert rt.datacenter is not None
        dc = rt.datacenter
        stop = threading.Event()

        def attend() -> None:
            while not stop.is_set():
                if rt.attention.wait(0.25):
                    rt.act_on_attention()

        def sweep() -> None:
            while not stop.is_set():
                rt.sweep()

        threads = [threading.Thread(target=attend, daemon=True)]
        if sweeping:
            threads.append(threading.Thread(target=sweep, daemon=True))
        for t in threads:
            t.start()
        names = sorted(n.name for n in rt.store.nodes() if not n.jobs_running)
        latencies: list[float] = []
        try:
            with TestClient(create_app(rt)) as client:
                for i in range(trials):
                    name = names[i % len(names)]
                    body = [
                        {
                            "check": "xid",
                            "version": "1",
                            "status": "fail",
                            "fatal": True,
                            "evidence": "XID 79",
                            "at": rt.clock.now().isoformat(),
                        }
                    ]
                    t0 = time.perf_counter()
                    r = client.post(f"/api/v1/nodes/{name}/health", json=body)
                    assert r.status_code == 202, r.text
                    while True:
                        with dc.cluster_access() as c:
                            if c.nodes[name].reason:
                                break
                        if time.perf_counter() - t0 > 120:
                            raise SystemExit(f"{name}: not drained within 120 s")
                        time.sleep(0.001)
                    latencies.append(time.perf_counter() - t0)
                    _settle(rt, name)
                    # Past the brake's window: drains one after another are no shared cause.
                    dc.advance(BRAKE_WINDOW_SECONDS)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
            rt.close()
    ordered = sorted(latencies)
    return {
        "nodes": racks * 8,
        "trials": trials,
        "sweeping": int(sweeping),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _settle(rt: object, name: str) -> None:
    """Back in service for the next trial, once the drain is recorded."""
    from compute.runtime import Runtime
    from health.policy import Lifecycle

    assert isinstance(rt, Runtime)
    for _ in range(5000):
        node = rt.store.node(name)
        if node is not None and node.state is not Lifecycle.IN_SERVICE:
            rt.nodes.resume(name, actor="bench", skip_burn_in=True)
            return
        time.sleep(0.002)


def write(path: Path, r: dict[str, float | int]) -> None:
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {r['nodes']:,} | {r['trials']} | "
        f"{'yes' if r['sweeping'] else 'no'} | {r['p50_ms']} ms | {r['p99_ms']} ms | "
        f"{r['max_ms']} ms |"
    )
    add_row(path, "<!-- attention rows -->", SECTION, row)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--sweeping", action="store_true")
    p.add_argument("--racks", type=int, default=4, help="of 8 nodes each")
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    r = run(a.trials, a.sweeping, a.racks)
    for k, v in r.items():
        print(f"{k:>10}: {v}")
    if a.write:
        write(a.write, r)


if __name__ == "__main__":
    main()
