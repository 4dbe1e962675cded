"""List 1,000 kwok GPU nodes, and drain + resume 100 of them, through the Kubernetes backend.

    python benchmarks/kubernetes_bench.py [--nodes 1000] [--drain 100] \\
        [--write benchmarks/RESULTS.md]

Brings up a testenv/kubernetes cluster of its own (state dir and ports apart
from the developer's and the tests' clusters), times `list_nodes()` and a
drain + resume (cordon, taint, annotations, eviction of GPU pods; then
undoing it) of ``--drain`` nodes one call per node, checks each round took
effect, and stops the cluster if it started it. ``--write`` appends the
section to RESULTS.md in one write (never rewriting what is there).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import machine  # noqa: E402
from scheduler.kubernetes import KubeClient, KubernetesWorkloadManager  # noqa: E402

SCRIPT = ROOT / "testenv" / "kubernetes"
STATE_DIR = Path.home() / ".cache" / "computectl" / "testenv" / "kubernetes-bench"
PORT_BASE = 26543  # apiserver; etcd +1 (+2 peers), controller-manager +3, scheduler +4
REASON = "computectl: bench: drain"
POOLS = {
    "training": {"computectl.io/pool": "training"},
    "inference": {"computectl.io/pool": "inference"},
}


def run_testenv(
    state_dir: Path, port_base: int, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COMPUTECTL_K8S_APISERVER_PORT": str(port_base),
        "COMPUTECTL_K8S_ETCD_PORT": str(port_base + 1),
        "COMPUTECTL_K8S_KCM_PORT": str(port_base + 3),
        "COMPUTECTL_K8S_SCHEDULER_PORT": str(port_base + 4),
    }
    proc = subprocess.run(
        [str(SCRIPT), *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        env=env,
    )
    if check and proc.returncode:
        raise SystemExit(f"testenv/kubernetes {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 3)


def check(wm: KubernetesWorkloadManager, names: list[str], drained: bool) -> None:
    nodes = {n.name: n for n in wm.list_nodes()}
    bad = [n for n in names if nodes[n].drain != drained or (drained and nodes[n].reason != REASON)]
    if bad:
        raise SystemExit(f"nodes not {'drained' if drained else 'resumed'}: {bad[:5]}")


SECTION = """
## Kubernetes backend (`benchmarks/kubernetes_bench.py`)

A real Kubernetes {k8s} control plane (testenv/kubernetes: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler built from the upstream modules) with kwok GPU nodes
(8x `nvidia.com/gpu` each), all on one machine, driven through `KubernetesWorkloadManager` and
the official Python client. `list` = `list_nodes()` (paged node lists per pool selector + one pod
list), best of 3. `drain` = cordon + computectl's taint + annotations in one strategic merge
patch guarded by the node's resourceVersion (read, patch), then the node's GPU pods listed
(none here) for eviction; `resume` = read + patch undoing exactly that; one backend call per
node, in sequence.

| date | machine | nodes | cluster up | list | drain {drain} nodes | resume {drain} nodes \
| per node (drain / resume) |
|---|---|---|---|---|---|---|---|
| {date} | {machine} | {nodes} | {up} s | {list} s | {drain_s} s | {resume_s} s \
| {drain_each} ms / {resume_each} ms |

A drain costs ~100 ms and a resume ~10 ms: after its patch, a drain lists the node's pods with
a consistent read, which the API server answers only once its watch cache has caught up with
the cordon just written (about 90 ms here); resume lists nothing.

The test environment itself, as measured by its author (2 cores):

| testenv/kubernetes | time |
|---|---|
| cold build of the binaries (apiserver, controller-manager, scheduler, kubectl, etcd, kwok) \
| 418.7 s (282 s on an idle machine with the Go modules already downloaded) |
| `up` with cached binaries, 32 nodes | 3.5 s |
| `up` with cached binaries, 1000 nodes | 13.1 s |
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--drain", type=int, default=100)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    p.add_argument("--write", type=Path)
    a = p.parse_args()

    was_up = run_testenv(a.state_dir, a.port_base, "status", check=False).returncode == 0
    t0 = time.perf_counter()
    run_testenv(a.state_dir, a.port_base, "up", "--nodes", str(a.nodes))
    up_seconds = round(time.perf_counter() - t0, 1)
    client = KubeClient(a.state_dir / "admin.kubeconfig", timeout_seconds=120)
    try:
        wm = KubernetesWorkloadManager(client, POOLS)
        names = [n.name for n in wm.list_nodes()]  # also the first connection, not timed
        assert len(names) == a.nodes, f"{len(names)} nodes listed, {a.nodes} expected"
        list_seconds = min(timed(wm.list_nodes) for _ in range(3))
        some = names[: a.drain]

        def drain() -> None:
            for n in some:
                wm.drain(n, REASON)

        def resume() -> None:
            for n in some:
                wm.resume(n)

        drain_seconds = timed(drain)
        check(wm, some, drained=True)
        resume_seconds = timed(resume)
        check(wm, some, drained=False)
    finally:
        client.close()
        if not was_up:
            run_testenv(a.state_dir, a.port_base, "down", check=False)
    section = SECTION.format(
        k8s="v1.36.3",
        date=f"{datetime.now(UTC):%Y-%m-%d}",
        machine=machine(),
        nodes=len(names),
        up=up_seconds,
        list=list_seconds,
        drain=len(some),
        drain_s=drain_seconds,
        resume_s=resume_seconds,
        drain_each=round(drain_seconds / len(some) * 1000, 1),
        resume_each=round(resume_seconds / len(some) * 1000, 1),
    )
    print(section)
    if a.write:
        with a.write.open("a") as f:  # one append: others may add their sections too
            f.write(section)


if __name__ == "__main__":
    main()
