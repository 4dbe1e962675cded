"""GPU usage from a real Slurm 22.05's accounting (testenv/slurm): a tenant's jobs, running
and ended, read by sacct through SlurmUsage and summed into GPU-hours per day."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compute.runtime import Runtime
from compute.services.usage import read_usage, summarise
from compute.tenants.spec import parse_tenant
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from scheduler.slurm.usage import SlurmUsage
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

T = "usage-labs"
PARTITIONS = {"training": "training", "inference": "inference"}


@pytest.fixture
def rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    spec = parse_tenant(
        {"name": T, "users": ["root"], "quotas": [{"pool": "training", "gpus": 32}]},
        runtime.settings.effective_pools,
    )
    runtime.tenants.apply(spec, actor="operator:test")
    yield runtime
    runtime.close()
    tenants = SlurmTenants(SlurmCommands(slurm_conf=slurm.slurm_conf), PARTITIONS)
    tenants.delete(T, force=True, grace_seconds=0)


def sbatch(slurm: SlurmCluster, gpus: int, seconds: int) -> str:
    proc = subprocess.run(
        ["sbatch", "--parsable", "-A", T, "-p", "training", "-N", "1",
         f"--gres=gpu:h100:{gpus}", "-o", "/dev/null", "--wrap", f"sleep {seconds}"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "SLURM_CONF": str(slurm.slurm_conf)},
    )  # fmt: skip
    return proc.stdout.strip().split(";")[0]


def test_running_and_ended_jobs_count_their_gpu_hours(rt: Runtime, slurm: SlurmCluster) -> None:
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    running = sbatch(slurm, 8, 300)
    short = sbatch(slurm, 4, 2)
    source = SlurmUsage(SlurmCommands(slurm_conf=slurm.slurm_conf), PARTITIONS)

    def states() -> dict[str, str]:
        out = slurm.run("sacct", "-n", "-P", "-X", "-A", T, "-o", "JobID,State")
        return dict(ln.split("|", 1) for ln in out.splitlines())

    # slurmctld tells slurmdbd of starts and ends a moment later.
    slurm.wait(
        "sacct to show one job running and one ended",
        lambda: states().get(running) == "RUNNING" and states().get(short) == "COMPLETED",
        30,
    )
    until = datetime.now(UTC)
    read = source.usage(since, until, T)
    assert read.skipped == 0
    by_gpus = {r.gpus: r for r in read.records}
    assert set(by_gpus) == {8, 4} and {r.tenant for r in read.records} == {T}
    assert all((r.pool, r.gpu_model) == ("training", "H100-SXM") for r in read.records)
    # The running job ends at `until`; the ended one ran its two seconds (sacct's whole
    # seconds, so one either way).
    assert by_gpus[8].end == until
    assert abs((by_gpus[4].end - by_gpus[4].start).total_seconds() - 2) <= 1
    assert since <= by_gpus[8].start <= until

    # Summed into GPU-hours per day as the service does (within a second of rounding).
    tagged, notes = read_usage([(source, {"training"})], T, since, until)
    assert not notes
    hours = sum(r.gpu_hours for r in summarise(tagged, since, until))
    expected = (8 * (until - by_gpus[8].start).total_seconds() + 4 * 2) / 3600
    assert abs(hours - expected) <= 12 / 3600
    # Another tenant's window sees none of it; all accounts see at least these.
    assert source.usage(since, until, "someone-else").records == []
    assert len(source.usage(since, until).records) >= 2
