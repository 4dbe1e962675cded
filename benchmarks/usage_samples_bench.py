"""Benchmark: counting Kubernetes pods' GPU time in the store, as each sweep does.

    python benchmarks/usage_samples_bench.py [--pods 10000] [--postgres URL]
        [--write benchmarks/RESULTS.md]

`compute.store.usage.record` over N running pods of 100 tenants: the first sample (a mark
inserted per pod), then steady samples a minute apart (each pod's mark moved by a write
conditional on the one read, its GPU time added per tenant, pool, model and day), best of
3. The pods come ready-made (`PodSpan`s): listing them is the API server's pod list, which
the sweep's allocations make already. Kubernetes has no tool of its own to set beside it.
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
## Counting Kubernetes pods' GPU time (`benchmarks/usage_samples_bench.py`)

`compute.store.usage.record` over N running pods (100 tenants), as each sweep runs it, in
transactions of 500 pods: the pods' marks read locked, then a first sample (the marks
inserted, one statement for many rows) or a steady sample a minute later (the marks moved,
one statement for many rows), then the per-day and per-tenant sums; steady: best of 3.

| date | machine | store | pods | first sample | steady sample | note |
|---|---|---|---|---|---|---|
"""


def run(url: str, pods: int) -> tuple[float, float]:
    from compute.store import Store
    from compute.store import usage as kept
    from scheduler.kubernetes.usage import PodSpan

    store = Store.open(url)
    try:
        t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)

        def spans(now: datetime) -> list[PodSpan]:
            return [
                PodSpan(f"uid-{i:08d}", f"t{i % 100}", "training", "H100-SXM", 8, t0, now, False)
                for i in range(pods)
            ]

        now = t0 + timedelta(minutes=1)
        began = time.perf_counter()
        assert kept.record(store, spans(now), now) == pods
        first = time.perf_counter() - began
        steady = []
        for m in range(2, 5):
            now = t0 + timedelta(minutes=m)
            batch = spans(now)
            began = time.perf_counter()
            assert kept.record(store, batch, now) == pods
            steady.append(time.perf_counter() - began)
        return first, min(steady)
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--postgres", help="a PostgreSQL URL whose public schema may be dropped")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    load = f"load {os.getloadavg()[0]:.1f}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        first, steady = run(f"sqlite:///{tmp}/state.db", args.pods)
        rows.append(("SQLite (WAL)", first, steady))
    if args.postgres:
        from sqlalchemy import create_engine, text

        engine = create_engine(args.postgres)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            version = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
        engine.dispose()
        first, steady = run(args.postgres, args.pods)
        rows.append((f"PostgreSQL {version}, same machine", first, steady))
    for store, first, steady in rows:
        row = (
            f"| {datetime.now(UTC).date()} | {machine()} | {store} | {args.pods:,} "
            f"| {first:.2f} s | {steady:.2f} s | {load} |"
        )
        print(row)
        if args.write:
            add_row(args.write, "<!-- usage sample rows -->", SECTION, row)


if __name__ == "__main__":
    main()
