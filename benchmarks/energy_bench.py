"""Benchmark: energy attributed after a sweep, as the acting control plane runs it.

    python benchmarks/energy_bench.py [--nodes 10240] [--write benchmarks/RESULTS.md]

`compute.services.energy.accrue` on a store of N nodes of 8 GPUs (power readings set),
with allocations of 100 tenants on about 60 % of the GPUs: the store's nodes and
allocations read, each node's energy since the last sweep split among its tenants, idle
and out of service, and the hour's rows added with the mark moved in one transaction;
steady sweeps a minute apart, best of 3, wall and CPU (user+sys) seconds. Then the
/metrics families read from the totals. No outside tool does this to set beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

SECTION = """
## Energy per tenant after each sweep (`benchmarks/energy_bench.py`)

`compute.services.energy.accrue` over N nodes of 8 GPUs (100 tenants on about 60 % of the
GPUs, SQLite store): nodes and allocations read, each node's energy split, the hour's rows
added and the mark moved in one transaction; best of 3 steady sweeps a minute apart. Then
the energy families of `/metrics` (read from the running totals).

| date | machine | nodes | accrue wall | accrue CPU | /metrics energy | note |
|---|---|---|---|---|---|---|
"""


def run(url: str, nodes: int) -> tuple[float, float, float]:
    from compute.config_energy import EnergySettings
    from compute.domain import Allocation, Node
    from compute.metrics.energy import metrics
    from compute.services.energy import accrue
    from compute.store import Store
    from health.policy import Lifecycle

    store = Store.open(url)
    try:
        t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
        states = [Lifecycle.IN_SERVICE] * 18 + [Lifecycle.DRAINING, Lifecycle.DRAINED]
        with store.transaction() as tx:
            for i in range(nodes):
                pool = "training" if i % 4 else "inference"
                tx.put_node(
                    Node(f"gpu-{i:05d}", pool, f"r{i // 32:03d}", "H100-SXM", 8,
                         states[i % len(states)], t0, power_watts=4000.0 + i % 1700)
                )  # fmt: skip
            tx.replace_allocations(
                [
                    Allocation(f"t{i % 100}", "training" if i % 4 else "inference",
                               f"gpu-{i:05d}", 1 + i % 8, f"j{i}")
                    for i in range(nodes)
                    if i % 5 < 3
                ]
            )  # fmt: skip
        cfg = EnergySettings()
        accrue(store, cfg, t0)
        best_wall, best_cpu = float("inf"), float("inf")
        for m in range(1, 4):
            c0, w0 = time.process_time(), time.perf_counter()
            assert accrue(store, cfg, t0 + timedelta(minutes=m)) == []
            best_wall = min(best_wall, time.perf_counter() - w0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        w0 = time.perf_counter()
        families = list(metrics(store, None))  # type: ignore[arg-type]
        assert families
        return best_wall, best_cpu, time.perf_counter() - w0
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_240)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu, scrape = run(f"sqlite:///{tmp}/state.db", args.nodes)
    row = (
        f"| {datetime.now(UTC).date()} | {machine()} | {args.nodes:,} | {wall:.3f} s "
        f"| {cpu:.3f} s | {scrape:.4f} s | load {os.getloadavg()[0]:.1f} |"
    )
    print(row)
    if args.write:
        add_row(args.write, "<!-- energy rows -->", SECTION, row)


if __name__ == "__main__":
    main()
