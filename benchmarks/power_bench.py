"""Power in the store at 10,240 nodes' scale, CPU seconds of the paths the product runs:
a simulated fleet's samples after a sweep (add_samples), nodes' single power posts
(put_readings, as POST /api/v1/nodes/{name}/power stores them), folding an hour of samples
(compact), and the power part of /metrics with every node reporting.

    .venv/bin/python benchmarks/power_bench.py [--nodes 10240] [--posts 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from compute.metrics.power import metrics
from compute.store import Store
from compute.store import power as readings
from compute.store.power import Latest, Retention
from compute.testing import make_settings

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=10_240)
    p.add_argument("--posts", type=int, default=1000)
    a = p.parse_args()
    d = Path(tempfile.mkdtemp(prefix="power-bench-"))
    store = Store.open(f"sqlite:///{d / 'state.db'}")
    ret = Retention(timedelta(seconds=300), timedelta(hours=24), 3600, timedelta(days=30),
                    1500, timedelta(minutes=15))  # fmt: skip
    rows = [(f"gpu-{i:05d}", f"r{i // 32:03d}", 5000.0 + i % 100) for i in range(a.nodes)]
    print(f"load average {os.getloadavg()}")
    for k in range(12):  # an hour at the default 300 s
        c = cpu()
        readings.add_samples(store, rows, T0 + timedelta(minutes=5 * k))
        if k < 3:
            print(f"samples of {a.nodes} nodes after a sweep: {cpu() - c:.3f} s CPU")
    gpus = tuple({"index": g, "power_watts": 600.0, "limit_watts": 700.0} for g in range(8))
    latest = [Latest(n, r, T0, w, w + 1000, "ipmi-dcmi", "", gpus) for n, r, w in rows]
    c = cpu()
    for one in latest[: a.posts]:
        readings.put_readings(store, [one], ret)
    print(f"{a.posts} single posts: {(cpu() - c) / a.posts * 1000:.2f} ms CPU a post")
    readings.put_readings(store, latest, ret)
    settings = make_settings(d)
    for _ in range(3):
        c = cpu()
        n = sum(len(m.samples) for m in metrics(store, settings))
        print(
            f"/metrics power part, {a.nodes} reporting nodes ({n} samples): {cpu() - c:.3f} s CPU"
        )
    c = cpu()
    readings.compact(store, T0 + timedelta(days=2), ret)
    print(f"folding an hour of {a.nodes} nodes' samples: {cpu() - c:.3f} s CPU")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
