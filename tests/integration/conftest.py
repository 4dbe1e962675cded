from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

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
class SlurmCluster:
    """The real test cluster of testenv/slurm: gpu-001…gpu-008, partitions training/inference."""

    state_dir: Path

    @property
    def script(self) -> Path:
        return ROOT / "testenv" / "slurm"

    @property
    def slurm_conf(self) -> Path:
        return self.state_dir / "slurm.conf"

    @property
    def computectl_toml(self) -> Path:
        return self.state_dir / "computectl.toml"

    def testenv(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.script), "--state-dir", str(self.state_dir), *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and proc.returncode:
            pytest.fail(f"testenv/slurm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
        return proc

    def up(self) -> None:
        self.testenv("up", "--nodes", str(SLURM_NODES), "--port-base", str(SLURM_PORT_BASE))

    def run(self, *argv: str, check: bool = True) -> str:
        """Run a Slurm command against the cluster, as an operator would."""
        env = {**os.environ, "SLURM_CONF": str(self.slurm_conf)}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
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

    def wait(self, what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.2)

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
