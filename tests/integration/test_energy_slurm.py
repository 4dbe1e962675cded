"""Energy and GPU-hours of a tenant on a real Slurm (testenv/slurm): its job's GPUs take
their share of the node's measured power between two sweeps, and `tenants usage` bills
the GPU-hours sacct accounts for beside that energy — as on Kubernetes
(tests/integration/test_energy_kubernetes.py)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.runtime import Runtime
from compute.services import billing
from compute.store import energy as kept
from compute.tenants.spec import parse_tenant
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

T = "energy-labs"
PARTITIONS = {"training": "training", "inference": "inference"}
WATTS = 6000.0


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


def test_a_jobs_gpus_take_their_share_of_the_nodes_energy_and_are_billed(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    job = sbatch(slurm, 4, 300)

    def node_of() -> str:
        out = slurm.run("squeue", "-h", "-j", job, "-o", "%T|%N")
        state, _, node = out.strip().partition("|")
        return node if state == "RUNNING" else ""

    deadline = time.monotonic() + 60
    while not node_of():
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.5)
    node = node_of()
    assert rt.sweep().errors == []  # allocations read from Slurm; energy starts
    gpu_count = next(n.gpu_count for n in rt.store.nodes() if n.name == node)
    with rt.store.transaction() as tx:  # the node's reading, as a posted report stores it
        [n] = tx.nodes([node])
        tx.put_node(n.evolve(power_watts=WATTS))
    start = kept.mark(rt.store)
    time.sleep(2)
    assert rt.sweep().errors == []
    end = kept.mark(rt.store)
    assert start is not None and end is not None and end > start
    rows = kept.hours(rt.store, start, end)
    mine = sum(r.it_mj for r in rows if r.holder == kept.TENANT and r.tenant == T)
    whole = WATTS * (end - start).total_seconds() * 1000
    assert mine == pytest.approx(whole * 4 / gpu_count, abs=2)
    assert sum(r.it_mj for r in rows) == pytest.approx(whole, abs=2)

    # slurmctld hands the job to slurmdbd on its own time (seconds on a loaded machine):
    # sacct's GPU-hours come once it has.
    deadline = time.monotonic() + 60
    while True:
        since, until = billing.span(rt.clock.now(), 1, None, None)
        bill, _ = billing.tenant_billing(rt, T, since, until)
        [row] = [r for r in bill.rows if r.pool == "training"]
        if row.sources == "slurm" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert row.sources == "slurm" and row.gpu_hours > 0
    assert row.energy_kwh * 3.6e9 == pytest.approx(mine, abs=1)
