from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from compute.config import load_settings
from compute.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (Debian's), started by testenv/postgres and stopped afterwards."""
    script = ROOT / "testenv" / "postgres"
    was_up = subprocess.run([str(script), "status"], capture_output=True).returncode == 0
    up = subprocess.run([str(script), "up"], capture_output=True, text=True)
    if up.returncode:
        pytest.fail(f"testenv/postgres up failed: {up.stderr or up.stdout}")
    yield up.stdout.strip().splitlines()[-1]
    if not was_up:
        subprocess.run([str(script), "down"], capture_output=True)


@pytest.fixture
def clean_postgres(postgres_url: str) -> str:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_url


# -- Slurm ----------------------------------------------------------------------------------------

SLURM_NODES = 8
# Its own state dir and ports, so a developer's `testenv/slurm up` cluster is left alone.
SLURM_STATE_DIR = Path(
    os.environ.get(
        "COMPUTECTL_TEST_SLURM_DIR",
        Path(os.environ.get("COMPUTECTL_TESTENV_DIR", Path.home() / ".cache/computectl/testenv"))
        / "slurm-pytest",
    )
)
SLURM_PORT_BASE = int(os.environ.get("COMPUTECTL_TEST_SLURM_PORT_BASE", "17600"))


@dataclass(frozen=True)
class EnvCluster:
    """A real test cluster brought up by one of the project's testenv/ scripts."""

    state_dir: Path
    # The testenv/ script, and how long one of its commands may take.
    kind = ""
    timeout = 600.0

    @property
    def script(self) -> Path:
        return ROOT / "testenv" / self.kind

    @property
    def computectl_toml(self) -> Path:
        return self.state_dir / "computectl.toml"

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def testenv(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            # Both scripts take --state-dir after the sub-command.
            [str(self.script), *args, "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=self.timeout,
        )
        if check and proc.returncode:
            pytest.fail(f"testenv/{self.kind} {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
        return proc

    def wait(self, what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)


@dataclass(frozen=True)
class SlurmCluster(EnvCluster):
    """The real test cluster of testenv/slurm: gpu-001…gpu-008, partitions training/inference."""

    kind = "slurm"

    @property
    def slurm_conf(self) -> Path:
        return self.state_dir / "slurm.conf"

    def up(self) -> None:
        self.testenv("up", "--nodes", str(SLURM_NODES), "--port-base", str(SLURM_PORT_BASE))

    def run(self, *argv: str, check: bool = True) -> str:
        """Run a Slurm command against the cluster, as an operator would."""
        env = {**os.environ, "SLURM_CONF": str(self.slurm_conf)}
        proc = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", env=env, timeout=60
        )
        if check and proc.returncode:
            raise AssertionError(f"{' '.join(argv)}: {proc.stderr or proc.stdout}")
        return proc.stdout

    def reasons(self) -> dict[str, str]:
        """`sinfo -R`: node → drain/down reason."""
        out = self.run("sinfo", "-R", "-h", "-N", "-o", "%N|%E")
        return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)

    def state(self, node: str) -> str:
        return self.run("sinfo", "-h", "-N", "-n", node, "-o", "%T").split()[0]

    def running_jobs(self, node: str | None = None) -> list[str]:
        args = ["squeue", "-h", "-t", "R", "-o", "%A"]
        return self.run(*args, *(["-w", node] if node else [])).split()

    def sbatch(self, node: str, seconds: float, gpus: int = 4, partition: str = "training") -> str:
        out = self.run(
            "sbatch", "--parsable", "-A", "root", "-p", partition, "-w", node,
            f"--gres=gpu:h100:{gpus}", "-o", "/dev/null", "--wrap", f"sleep {seconds}",
        )  # fmt: skip
        return out.strip().split(";")[0]

    def ctld_pid(self) -> int:
        return int((self.state_dir / "pids" / "slurmctld.pid").read_text().split()[0])

    def reset(self) -> None:
        """Every test starts on an idle cluster: slurmctld up, no jobs, no drains."""
        if self.testenv("status", check=False).returncode:
            self.up()
        jobs = self.run("squeue", "-h", "-o", "%A").split()
        if jobs:
            self.run("scancel", *jobs)
            self.wait("jobs to end", lambda: not self.run("squeue", "-h", "-o", "%A").strip())
        drained = sorted(set(self.reasons()))
        if drained:
            self.run("scontrol", "update", f"nodename={','.join(drained)}", "state=resume")
        self.wait(
            "nodes to be idle",
            lambda: set(self.run("sinfo", "-h", "-N", "-o", "%T").split()) == {"idle"},
        )


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real Slurm 22.05 cluster of 8 nodes (testenv/slurm), stopped afterwards if we started it."""
    if os.geteuid() != 0:
        pytest.skip("testenv/slurm needs root (mknod, packages, daemons)")
    cluster = SlurmCluster(SLURM_STATE_DIR)
    was_up = cluster.testenv("status", check=False).returncode == 0
    cluster.up()
    yield cluster
    if not was_up:
        cluster.testenv("down", check=False)


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> SlurmCluster:
    """The session's cluster, reset to idle for this test."""
    slurm_cluster.reset()
    return slurm_cluster


# -- Kubernetes -----------------------------------------------------------------------------------

KUBE_NODES = 8
# Its own state dir and ports, so a developer's `testenv/kubernetes up` cluster is left alone.
KUBE_STATE_DIR = Path(
    os.environ.get(
        "COMPUTECTL_TEST_K8S_DIR",
        Path(os.environ.get("COMPUTECTL_TESTENV_DIR", Path.home() / ".cache/computectl/testenv"))
        / "kubernetes-pytest",
    )
)
KUBE_PORT_BASE = int(os.environ.get("COMPUTECTL_TEST_K8S_PORT_BASE", "26443"))
# Objects the tests create carry this label, so a reset finds (only) them.
KUBE_TEST_LABEL = "computectl.io/test"
_COMPUTECTL_ANNOTATIONS = ("computectl.io/drain-reason", "computectl.io/was-cordoned")


@dataclass(frozen=True)
class KubeCluster(EnvCluster):
    """The real test cluster of testenv/kubernetes: kwok-gpu-001…008 (training: 001-006)."""

    kind = "kubernetes"
    timeout = 900.0

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPUTECTL_K8S_APISERVER_PORT": str(KUBE_PORT_BASE),
            "COMPUTECTL_K8S_ETCD_PORT": str(KUBE_PORT_BASE + 1),  # and +2 for etcd's peers
            "COMPUTECTL_K8S_KCM_PORT": str(KUBE_PORT_BASE + 3),
            "COMPUTECTL_K8S_SCHEDULER_PORT": str(KUBE_PORT_BASE + 4),
        }

    def up(self) -> None:
        # After a crash `up` restarts every component; a daemon it has just stopped can
        # hold its port for a moment longer ("port ... is in use"): one retry suffices.
        if self.testenv("up", "--nodes", str(KUBE_NODES), check=False).returncode:
            time.sleep(2)
            self.testenv("up", "--nodes", str(KUBE_NODES))

    def apiserver_pid(self) -> int:
        return int((self.state_dir / "run" / "kube-apiserver.pid").read_text().split()[0])

    def core(self) -> Any:
        """The tests' own CoreV1Api: they look at the cluster as an operator's tools would."""
        from kubernetes import client, config

        return client.CoreV1Api(
            config.new_client_from_config(config_file=str(self.kubeconfig), persist_config=False)
        )

    def reset(self) -> None:
        """Every test starts on an idle cluster: no test namespaces, no cordons, taints or notes."""
        if self.testenv("status", check=False).returncode:
            self.up()
        from kubernetes.client.exceptions import ApiException

        core = self.core()
        try:
            selector = f"{KUBE_TEST_LABEL}=true"
            namespaces = [
                n.metadata.name for n in core.list_namespace(label_selector=selector).items
            ]
            for ns in namespaces:
                try:
                    core.delete_namespace(ns, propagation_policy="Background")
                    # The namespace controller deletes pods with their grace period; kwok
                    # would wait it out. No new pods start in a terminating namespace.
                    core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
                except ApiException as exc:
                    # It finished going between the list and the delete.
                    if exc.status != 404:
                        raise
            # Namespace deletion is asynchronous: wait until their pods no longer hold GPUs.
            self.wait(
                "test pods to go",
                lambda: (
                    not [
                        p
                        for p in core.list_pod_for_all_namespaces().items
                        if p.metadata.namespace in namespaces
                    ]
                ),
                60,
            )
            for node in core.list_node(label_selector="computectl.io/testenv=kwok").items:
                notes = node.metadata.annotations or {}
                if (
                    node.spec.unschedulable
                    or node.spec.taints
                    or any(k in notes for k in _COMPUTECTL_ANNOTATIONS)
                ):
                    core.patch_node(
                        node.metadata.name,
                        {
                            "metadata": {"annotations": dict.fromkeys(_COMPUTECTL_ANNOTATIONS)},
                            "spec": {"unschedulable": None, "taints": None},
                        },
                        _content_type="application/merge-patch+json",
                    )
        finally:
            core.api_client.close()


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """A real Kubernetes API server with 8 kwok GPU nodes (testenv/kubernetes), stopped
    afterwards if this session started it."""
    pytest.importorskip("kubernetes")
    cluster = KubeCluster(KUBE_STATE_DIR)
    was_up = cluster.testenv("status", check=False).returncode == 0
    cluster.up()
    yield cluster
    if not was_up:
        cluster.testenv("down", check=False)


@pytest.fixture
def kube(kube_cluster: KubeCluster) -> KubeCluster:
    """The session's cluster, reset to idle for this test."""
    kube_cluster.reset()
    return kube_cluster


@pytest.fixture
def node_check_ns(api: Any) -> str:
    """A namespace like the kubernetes_health role's computectl-system, with the node check's
    ServiceAccount in it (without it the Job controller creates no pods)."""
    name = f"kt-nodecheck-{uuid.uuid4().hex[:6]}"
    api.create_namespace({"metadata": {"name": name, "labels": {KUBE_TEST_LABEL: "true"}}})
    api.create_namespaced_service_account(name, {"metadata": {"name": "computectl-node-check"}})
    return name


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[Any]:
    """The tests' own client (CoreV1Api), to set the scene and look at the result."""
    core = kube.core()
    yield core
    core.api_client.close()


# -- a control plane over a test cluster ----------------------------------------------------------


def runtime_over(
    cluster_toml: Path,
    data_dir: Path,
    pool_table: Mapping[str, Any] | None = None,
    **remediation: Any,
) -> Runtime:
    """A control plane whose pools are a test cluster's (the TOML its testenv writes), adopted
    by a first sweep. Nodes stay in service: no burn-in drains unless a test asks for them.

    ``pool_table`` is merged into every pool's backend table ([pools.slurm] or
    [pools.kubernetes]); ``remediation`` into [remediation].
    """
    overrides: dict[str, Any] = {
        "data_dir": str(data_dir),
        "remediation": {"new_nodes": "in_service", "periodic_burn_in_days": 0, **remediation},
    }
    pools = [
        p.model_dump(mode="json", exclude_none=True)
        for p in load_settings(cluster_toml, env={}).pools
    ]
    for p in pools:
        # These tests act from the first sweep; an adopted cluster's observe mode has its own.
        p["adopt"] = "enforce"
        p.setdefault(p["backend"], {}).update(pool_table or {})
    overrides["pools"] = pools
    settings = load_settings(cluster_toml, env={}, overrides=overrides)
    assert not settings.simulation.enabled
    runtime = Runtime.build(settings)
    runtime.sweep()
    return runtime
