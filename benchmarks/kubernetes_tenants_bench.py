"""Plan, apply and re-apply many tenants on a real Kubernetes API server (`KubernetesTenants`).

    python benchmarks/kubernetes_tenants_bench.py [--tenants 100] [--write benchmarks/RESULTS.md]

Brings up a testenv/kubernetes control plane of its own (state dir and ports apart from the
developer's and the tests'), then for N tenants (two users, 16 GPUs in training): plans each
(all creates), applies each (namespace, quota, limit range, service account, role, binding,
network policy; the shared admission policy once), re-applies each unchanged (must change
nothing), and deletes them all with their data. Stops the control plane if it started it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.kubernetes_bench import POOLS, run_testenv, timed  # noqa: E402
from benchmarks.results import add_row, machine  # noqa: E402
from scheduler.kubernetes import KubeClient, KubernetesTenants  # noqa: E402
from scheduler.tenants import GpuQuota, TenantSpec  # noqa: E402

STATE_DIR = Path.home() / ".cache" / "computectl" / "testenv" / "kubernetes-tenants-bench"
PORT_BASE = 36443
SECTION = """
## Kubernetes tenants (`benchmarks/kubernetes_tenants_bench.py`)

N tenants on a real API server (testenv/kubernetes, 8 kwok nodes) through `KubernetesTenants`:
plan (all creates), apply (server-side apply of 8 objects each), unchanged re-apply (must change
nothing), delete with data.

| date | machine | tenants | plan | apply | unchanged re-apply | delete |
|---|---|---|---|---|---|---|
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=100)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    was_up = run_testenv(a.state_dir, a.port_base, "status", check=False).returncode == 0
    run_testenv(a.state_dir, a.port_base, "up", "--nodes", "8")
    client = KubeClient(a.state_dir / "admin.kubeconfig", timeout_seconds=120)
    try:
        tenants = KubernetesTenants(client, POOLS)
        specs = [
            TenantSpec(f"bench-{i:04d}", ("alice", "bob"), (GpuQuota("training", "H100-SXM", 16),))
            for i in range(a.tenants)
        ]
        n = len(specs)
        planned: list[int] = []
        t_plan = timed(lambda: planned.extend(len(tenants.plan(s)) for s in specs))
        assert all(planned), "every tenant is new: every plan has changes"
        t_apply = timed(lambda: [tenants.apply(s) for s in specs])
        again: list[int] = []
        t_reapply = timed(lambda: again.extend(len(tenants.apply(s)) for s in specs))
        assert again == [0] * n, "an unchanged re-apply changed something"
        t_delete = timed(
            lambda: [tenants.delete(s.name, force=True, purge_data=True) for s in specs]
        )
    finally:
        client.close()
        if not was_up:
            run_testenv(a.state_dir, a.port_base, "down", check=False)

    def cell(total: float) -> str:
        return f"{total:.2f} s ({total / n * 1000:.0f} ms each)"

    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {n} | {cell(t_plan)} | {cell(t_apply)} "
        f"| {cell(t_reapply)} | {cell(t_delete)} |"
    )
    print(row)
    if a.write:
        add_row(a.write, "<!-- kubernetes tenant rows -->", SECTION, row)


if __name__ == "__main__":
    main()
