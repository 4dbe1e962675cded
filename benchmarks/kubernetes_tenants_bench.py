"""Many tenants on a real Kubernetes API server, through the product path, beside kubectl.

    python benchmarks/kubernetes_tenants_bench.py [--tenants 1000] [--no-queues]
        [--write benchmarks/RESULTS.md]

Brings up a testenv/kubernetes control plane of its own (state dir and ports apart from the
developer's and the tests') and, unless --no-queues, Kueue beside it (testenv/kueue), then
in the same run:

* the reference: every object of N tenants (``ref-NNNN``) in one file, created with one
  ``kubectl apply --server-side``, then the same file applied again unchanged;
* the product: N other tenants (``bench-NNNN``, the same objects under other names)
  through `KubernetesTenants.apply_many` (one read of the cluster, shared objects once,
  8 tenants at a time), then an unchanged re-apply (must change nothing), three times,
  with the CPU seconds of this process and of the API server.

Each tenant: two users, 8 GPUs in training and 8 in inference (with queues: its
ClusterQueue and LocalQueue, the shared ResourceFlavors). Targets (issue 13): create
within 3x the reference, unchanged re-apply < 5 s. Removes the tenants afterwards, and
stops the control plane if it started it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.kubernetes_bench import POOLS, run_testenv, timed  # noqa: E402
from benchmarks.results import add_row, machine  # noqa: E402
from scheduler.kubernetes import KubeClient, KubernetesTenants  # noqa: E402
from scheduler.kubernetes import tenant_objects as to  # noqa: E402
from scheduler.tenants import GpuQuota, TenantSpec  # noqa: E402

STATE_DIR = Path.home() / ".cache" / "computectl" / "testenv" / "kubernetes-tenants-bench"
PORT_BASE = 36443
MARKER = "<!-- kubernetes tenant batch cpu rows -->"
SECTION = """
## Kubernetes tenants at scale, with CPU (`benchmarks/kubernetes_tenants_bench.py`)

N tenants on a real API server (testenv/kubernetes, 8 kwok nodes; with queues, Kueue's
webhooks admitting its objects) in one run: the reference is one `kubectl apply
--server-side` of every object of N tenants (then the same file again, unchanged); the
product is `KubernetesTenants.apply_many` for N other tenants with the same objects (then an
unchanged re-apply, which must change nothing, run three times). Each tenant: 8 GPUs in
training, 8 in inference, two users. Targets: create within 3x the reference, unchanged
re-apply < 5 s. The machine is shared: beside wall times, the CPU seconds of the computectl
process (user+sys, all its threads) and of the API server during each unchanged re-apply.

"""
COLUMNS = (
    "date", "machine", "load (1 min, before / after)", "tenants", "objects", "queues",
    "kubectl create", "computectl create (CPU)", "ratio", "kubectl unchanged",
    "computectl unchanged re-apply x3 (CPU)", "API server CPU per re-apply",
    "computectl plan (unchanged)",
)  # fmt: skip
REPEAT = 3
SECTION += "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|\n"


def specs(prefix: str, n: int) -> list[TenantSpec]:
    quotas = (GpuQuota("training", "H100-SXM", 8), GpuQuota("inference", "H100-SXM", 8))
    return [TenantSpec(f"{prefix}-{i:04d}", ("alice", "bob"), quotas) for i in range(n)]


def objects(tenants: KubernetesTenants, of: list[TenantSpec]) -> list[dict[str, Any]]:
    """Every object of ``of``, the shared ones once, in apply order."""
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, Any]] = []
    for spec in of:
        for obj in to.desired(spec, tenants.pool_values, tenants.gpu_resource, tenants.queues):
            m = obj["metadata"]
            key = (obj["kind"], f"{m.get('namespace', '')}/{m['name']}")
            if key not in seen:
                seen.add(key)
                out.append(obj)
    return out


def cpu() -> float:
    """This process's CPU seconds (user+sys, every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_cpu(state_dir: Path) -> float:
    """The API server's CPU seconds so far (from /proc; 0 where it cannot be read)."""
    try:
        pid = (state_dir / "run" / "kube-apiserver.pid").read_text().split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def kubectl(kubeconfig: Path, *args: str) -> None:
    env_lines = subprocess.run(
        [str(ROOT / "testenv" / "kubernetes"), "env"], capture_output=True, text=True, check=True
    ).stdout
    path = next(
        line.split("=", 1)[1].split(":")[0] for line in env_lines.splitlines() if "PATH=" in line
    )
    exe = Path(path.strip("'\"")) / "kubectl"
    subprocess.run(
        [str(exe), "--kubeconfig", str(kubeconfig), *args], check=True, capture_output=True
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--no-queues", action="store_true")
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    queues = not a.no_queues
    load = os.getloadavg()[0]
    was_up = run_testenv(a.state_dir, a.port_base, "status", check=False).returncode == 0
    run_testenv(a.state_dir, a.port_base, "up", "--nodes", "8")
    kubeconfig = a.state_dir / "admin.kubeconfig"
    kueue = [str(ROOT / "testenv" / "kueue"), "--state-dir", f"{a.state_dir}-kueue"]
    if queues:
        subprocess.run(
            [
                kueue[0],
                "up",
                *kueue[1:],
                "--kubeconfig",
                str(kubeconfig),
                "--port",
                str(a.port_base + 10),
            ],
            check=True,
        )
    client = KubeClient(kubeconfig, timeout_seconds=120)
    n = a.tenants
    try:
        tenants = KubernetesTenants(client, POOLS, queues=queues)
        ref = objects(tenants, specs("ref", n))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": ref}, f)
        apply = [
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "kubectl-ref",
            "-f",
            f.name,
        ]
        t_ref = timed(lambda: kubectl(kubeconfig, *apply))
        t_ref_again = timed(lambda: kubectl(kubeconfig, *apply))
        os.unlink(f.name)
        mine = specs("bench", n)
        created: list[Any] = []
        c0 = cpu()
        t_create = timed(lambda: created.extend(tenants.apply_many(mine)))
        c_create = cpu() - c0
        errors = [o for o in created if o.error]
        assert not errors, errors[:3]
        agains: list[tuple[float, float, float]] = []
        for _ in range(REPEAT):
            c0, s0 = cpu(), server_cpu(a.state_dir)
            t0 = time.perf_counter()
            again = tenants.apply_many(mine)
            t_again = time.perf_counter() - t0
            agains.append((t_again, cpu() - c0, server_cpu(a.state_dir) - s0))
            assert all(not o.changes and not o.error for o in again), (
                "an unchanged re-apply changed something"
            )
        planned: list[Any] = []
        t_plan = timed(lambda: planned.extend(tenants.plan_many(mine)))
        assert all(not o.changes for o in planned)
    finally:
        client.close()
        if was_up:
            for kind in ("namespace", "clusterqueue") if queues else ("namespace",):
                kubectl(
                    kubeconfig,
                    "delete",
                    kind,
                    "-l",
                    f"{to.MANAGED_BY}={to.MANAGER}",
                    "--wait=false",
                )
        else:
            if queues:
                subprocess.run([kueue[0], "down", *kueue[1:]], check=False)
            run_testenv(a.state_dir, a.port_base, "down", check=False)

    runs = " / ".join(f"{t:.2f} s ({c:.2f})" for t, c, _ in agains)
    server = " / ".join(f"{sc:.2f} s" for _, _, sc in agains)
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} UTC | {machine()} "
        f"| {load:.1f} / {os.getloadavg()[0]:.1f} | {n} | {len(ref)} "
        f"| {'Kueue' if queues else 'none'} | {t_ref:.2f} s | {t_create:.2f} s ({c_create:.1f}) "
        f"| {t_create / t_ref:.2f}x | {t_ref_again:.2f} s | {runs} | {server} | {t_plan:.2f} s |"
    )
    print(row)
    if a.write:
        add_row(a.write, MARKER, SECTION, row)


if __name__ == "__main__":
    main()
