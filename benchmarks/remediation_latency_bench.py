"""Detection to drain on the real test clusters: from the POST of a fatal result to the node
out of service in the workload manager, through `computectl serve` under its default settings.

    python benchmarks/remediation_latency_bench.py [--trials 50] [--backend slurm|kubernetes]
        [--slurm-dir DIR --slurm-port-base N] [--k8s-dir DIR --k8s-port-base N]
        [--write benchmarks/RESULTS.md]

For each backend: brings up its testenv cluster (a state dir and ports of its own unless
given; stopped afterwards if this run started it), starts `computectl serve` on the
cluster's generated configuration (a fresh data directory; every other setting its
default: sweeps every 60 s; the pools enabled, the brake's limits out of the way), and runs
trials in turn over the training pool's nodes: POST one fatal XID result for a node, poll
the workload manager every 10 ms until the node is out of service (Slurm: DRAIN with a
`computectl:` reason; Kubernetes: cordoned and carrying computectl's taint), then resume it
through the API and wait until it is back in service on both sides. A trial that does not
drain within 90 s counts as 90 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

CLI = Path(sys.executable).parent / "computectl"
TOKEN = "remediation-bench"
POLL = 0.01
GIVE_UP = 90.0
TESTENV = Path.home() / ".cache" / "computectl" / "testenv"
MARKER = "<!-- remediation latency rows -->"
SECTION = """## Detection to drain (`benchmarks/remediation_latency_bench.py`)

`computectl serve` under its default settings (sweeps every 60 s) on the configuration a
testenv cluster generates, one replica on SQLite, its pools enabled (adopted pools start in
observe mode) and the brake's limits raised out of the way (50 drains of one pool within
minutes is what the brake exists to stop). A trial: POST one fatal XID result for a
training node through the API, then poll the workload manager every 10 ms until the node is
out of service (Slurm: `sinfo` shows DRAIN with a `computectl:` reason; Kubernetes: the node
is cordoned and carries computectl's taint); resume it through the API between trials. The
time is from just before the POST to the poll that first saw the change (so it includes up to
one poll and the poll's own cost). Target: p99 < 2 s.

| date | machine | backend | trials | p50 | p99 | max | note |
|---|---|---|---|---|---|---|---|"""


class Cluster:
    """A testenv cluster: how to start it, and how to read a node's state as an operator."""

    kind = ""

    def __init__(self, state_dir: Path, port_base: int) -> None:
        self.state_dir = state_dir
        self.port_base = port_base
        self.started = False

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def testenv(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(ROOT / "testenv" / self.kind), *args, "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
            env=self.env(),
        )
        if check and proc.returncode:
            raise SystemExit(f"testenv/{self.kind} {' '.join(args)}:\n{proc.stderr}{proc.stdout}")
        return proc

    def up(self) -> None:
        if self.testenv("status", check=False).returncode:
            self.started = True
            self.testenv("up", *self.up_args())

    def down(self) -> None:
        if self.started:
            self.testenv("down", check=False)

    def up_args(self) -> list[str]:
        return ["--nodes", "8"]

    def out_of_service(self, node: str) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        """Every node in service, none of computectl's marks: a fresh control plane adopts
        the cluster as it is, and would take a leftover drain for someone else's."""
        raise NotImplementedError


class Slurm(Cluster):
    kind = "slurm"

    def up_args(self) -> list[str]:
        return ["--nodes", "8", "--port-base", str(self.port_base)]

    def run(self, *argv: str) -> str:
        env = {**os.environ, "SLURM_CONF": str(self.state_dir / "slurm.conf")}
        return subprocess.run(argv, capture_output=True, text=True, env=env).stdout

    def out_of_service(self, node: str) -> bool:
        state, _, reason = (
            self.run("sinfo", "-h", "-N", "-n", node, "-o", "%T|%E").strip().partition("|")
        )
        return "drain" in state and reason.startswith("computectl:")

    def reset(self) -> None:
        jobs = self.run("squeue", "-h", "-o", "%A").split()
        if jobs:
            self.run("scancel", *jobs)
        for word in self.run("scontrol", "-o", "show", "reservation").split():
            if word.startswith("ReservationName=computectl-"):
                self.run("scontrol", "delete", word)
        drained = [
            line.split("|")[0]
            for line in self.run("sinfo", "-h", "-N", "-o", "%N|%T").splitlines()
            if "drain" in line
        ]
        if drained:
            self.run("scontrol", "update", f"nodename={','.join(drained)}", "state=resume")


class Kubernetes(Cluster):
    kind = "kubernetes"

    def __init__(self, state_dir: Path, port_base: int) -> None:
        super().__init__(state_dir, port_base)
        self._core: Any = None

    def env(self) -> dict[str, str]:
        b = self.port_base
        return {
            **os.environ,
            "COMPUTECTL_K8S_APISERVER_PORT": str(b),
            "COMPUTECTL_K8S_ETCD_PORT": str(b + 1),  # and +2 for etcd's peers
            "COMPUTECTL_K8S_KCM_PORT": str(b + 3),
            "COMPUTECTL_K8S_SCHEDULER_PORT": str(b + 4),
        }

    def core(self) -> Any:
        if self._core is None:
            from kubernetes import client
            from kubernetes import config as k8s_config

            config: Any = k8s_config  # the package has no type hints
            kubeconfig = str(self.state_dir / "admin.kubeconfig")
            api = config.new_client_from_config(config_file=kubeconfig, persist_config=False)
            self._core = client.CoreV1Api(api)
        return self._core

    def out_of_service(self, node: str) -> bool:
        spec = self.core().read_node(node).spec
        taints = [t.key for t in spec.taints or []]
        return bool(spec.unschedulable) and any(k.startswith("computectl") for k in taints)

    def reset(self) -> None:
        for node in self.core().list_node(label_selector="computectl.io/testenv=kwok").items:
            notes = {k: None for k in node.metadata.annotations or {} if "computectl" in k}
            if node.spec.unschedulable or node.spec.taints or notes:
                self.core().patch_node(
                    node.metadata.name,
                    {
                        "metadata": {"annotations": notes},
                        "spec": {"unschedulable": None, "taints": None},
                    },
                    _content_type="application/merge-patch+json",
                )


class Serve:
    """`computectl serve` on a cluster's configuration, defaults otherwise."""

    def __init__(self, cluster: Cluster, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
        env.update(
            COMPUTECTL_CONFIG=str(cluster.state_dir / "computectl.toml"),
            COMPUTECTL_DATA_DIR=str(data_dir),
            COMPUTECTL_SERVER__API_TOKEN=TOKEN,
            # The brake exists to stop what this does (50 drains of one pool in minutes).
            COMPUTECTL_REMEDIATION__BRAKE__MIN_NODES="100000",
            COMPUTECTL_REMEDIATION__BRAKE__POOL_MAX_NODES="100000",
        )
        self.log = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(CLI), "serve", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def nodes(self) -> dict[str, str]:
        try:
            return {n["name"]: n["state"] for n in self.call("GET", "/api/v1/nodes")["nodes"]}
        except (OSError, urllib.error.URLError):
            return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait(what: str, cond: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def trial(cluster: Cluster, serve: Serve, node: str) -> float:
    at = datetime.now(UTC).isoformat()
    result = {"check": "xid", "version": "1", "status": "fail", "fatal": True, "at": at,
              "evidence": "XID 79: GPU has fallen off the bus (benchmark)"}  # fmt: skip
    t0 = time.perf_counter()
    serve.call("POST", f"/api/v1/nodes/{node}/health", [result])
    while not cluster.out_of_service(node):
        if time.perf_counter() - t0 > GIVE_UP:
            break
        time.sleep(POLL)
    took = time.perf_counter() - t0
    # Back in service on both sides before the next trial (the budget allows one at a time).
    wait(f"{node} drained in the store", lambda: serve.nodes().get(node) != "in_service")
    serve.call("POST", f"/api/v1/nodes/{node}/resume", {"skip_burn_in": True})
    wait(f"{node} back in service", lambda: not cluster.out_of_service(node))
    wait(f"{node} in service in the store", lambda: serve.nodes().get(node) == "in_service")
    return took


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def bench(cluster: Cluster, trials: int) -> list[float]:
    cluster.up()
    cluster.reset()
    with tempfile.TemporaryDirectory(prefix="remediation-bench-") as tmp:
        serve = Serve(cluster, Path(tmp))
        try:
            wait("serve to adopt the cluster's nodes", lambda: len(serve.nodes()) == 8, 300)
            # Adopted pools start in observe mode: the operator lets computectl act.
            for pool in ("training", "inference"):
                serve.call("POST", f"/api/v1/pools/{pool}/enable")
            time.sleep(1.5)  # the gate reads pools' modes at most once a second
            training = sorted(n for n, _ in serve.nodes().items())[:6]
            times = []
            for i in range(trials):
                took = trial(cluster, serve, training[i % len(training)])
                times.append(took)
                print(f"{cluster.kind} trial {i + 1}: {took * 1000:.0f} ms", flush=True)
            return times
        finally:
            serve.stop()
            cluster.down()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--backend", choices=["slurm", "kubernetes"], action="append")
    p.add_argument("--slurm-dir", type=Path, default=TESTENV / "slurm-remediation-bench")
    p.add_argument("--slurm-port-base", type=int, default=20400)
    p.add_argument("--k8s-dir", type=Path, default=TESTENV / "kubernetes-remediation-bench")
    p.add_argument("--k8s-port-base", type=int, default=26643)
    p.add_argument("--note", default="")
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    clusters: dict[str, Cluster] = {
        "slurm": Slurm(a.slurm_dir, a.slurm_port_base),
        "kubernetes": Kubernetes(a.k8s_dir, a.k8s_port_base),
    }
    for name in a.backend or ["slurm", "kubernetes"]:
        times = bench(clusters[name], a.trials)
        p50, p99 = statistics.median(times), percentile(times, 0.99)
        print(
            f"{name}: {len(times)} trials, p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(times):.3f} s"
        )
        if a.write:
            row = (
                f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {name} | {len(times)} | "
                f"{p50:.3f} s | {p99:.3f} s | {max(times):.3f} s | {a.note} |"
            )
            add_row(a.write, MARKER, SECTION, row)


if __name__ == "__main__":
    main()
