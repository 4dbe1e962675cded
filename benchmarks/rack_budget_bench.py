"""Rack budgets' judgement after a sweep at 10,240 nodes' scale: 1,280 racks with 60 draw
samples each (half an hour of sweeps 30 s apart), one rack in seven rising. CPU seconds of
compute.services.rack_budgets.evaluate, three runs, with the load average.

    python benchmarks/rack_budget_bench.py
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from compute.config import load_settings
from compute.domain import Rack, RackPower, Room, Site
from compute.services.rack_budgets import evaluate
from compute.store import Store
from compute.testing import EPOCH

RACKS, SAMPLES = 1280, 60


def main() -> None:
    d = Path(tempfile.mkdtemp(prefix="rack-budget-bench-"))
    settings = load_settings(None, env={}, overrides={"data_dir": str(d)})
    store = Store.open(settings.sqlalchemy_url)
    racks = [Rack(f"r{i:04d}", "hall-a", 40000.0) for i in range(RACKS)]
    with store.transaction() as tx:
        tx.put_topology([Site("s")], [Room("hall-a", "s")], racks, [])
        for k in range(SAMPLES):
            at = EPOCH + timedelta(seconds=30 * k)
            tx.add_rack_power(
                [
                    RackPower(r.name, at, 30000.0 + (k * 50 if i % 7 == 0 else 0), 0.0)
                    for i, r in enumerate(racks)
                ]
            )
    now = EPOCH + timedelta(seconds=30 * (SAMPLES - 1))
    rt = SimpleNamespace(store=store, settings=settings)
    print("load average before", os.getloadavg())
    for _ in range(3):
        t0, w0 = time.process_time(), time.perf_counter()
        out = evaluate(rt, now)  # type: ignore[arg-type]
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        print(
            f"evaluate {RACKS} racks x {SAMPLES}: CPU {cpu:.3f} s, "
            f"wall {wall:.3f} s, {len(out)} judged"
        )
    print("load average after", os.getloadavg())
    store.close()


if __name__ == "__main__":
    main()
