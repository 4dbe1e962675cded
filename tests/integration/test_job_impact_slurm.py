"""Which fault hit which job, on the real Slurm test cluster (testenv/slurm): a tenant's job
running on a node computectl drains for a fault appears in the tenant's incident list with
the GPU-hours it lost (its GPUs from its start to the drain); two looks record it once. A
job that ends NODE_FAIL (its node's slurmd dies) is linked to the node's finding."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from compute.runtime import Runtime
from compute.services import job_impact
from compute.store import impact as kept
from compute.tenants.spec import parse_tenant
from compute.testing import result
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from tests.integration.conftest import SlurmCluster, runtime_over
from tests.integration.test_attention import drains, post_fatal

pytestmark = pytest.mark.integration

T = "impact-labs"
PARTITIONS = {"training": "training", "inference": "inference"}
NODE, OTHER = "gpu-003", "gpu-004"


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
    SlurmTenants(SlurmCommands(slurm_conf=slurm.slurm_conf), PARTITIONS).delete(
        T, force=True, grace_seconds=0
    )
    slurm.reset()


def sbatch(slurm: SlurmCluster, node: str, gpus: int) -> str:
    proc = subprocess.run(
        ["sbatch", "--parsable", "-A", T, "-p", "training", "-w", node,
         f"--gres=gpu:h100:{gpus}", "-o", "/dev/null", "--wrap", "sleep 600"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "SLURM_CONF": str(slurm.slurm_conf)},
    )  # fmt: skip
    return proc.stdout.strip().split(";")[0]


def started(slurm: SlurmCluster, job: str) -> datetime:
    """The job's start as Slurm's accounting has it (local time, whole seconds)."""
    out = slurm.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "Start").strip()
    return datetime.fromisoformat(out).astimezone()


def test_a_job_on_a_node_drained_for_a_fault_is_its_tenants_incident(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    hit = sbatch(slurm, NODE, 4)
    spared = sbatch(slurm, OTHER, 2)
    slurm.wait("both jobs to run", lambda: {hit, spared} <= set(slurm.running_jobs()), 30)
    slurm.wait(
        "sacct to show the job started",
        lambda: slurm.run("sacct", "-n", "-P", "-X", "-j", hit, "-o", "State").strip() == "RUNNING",
        30,
    )
    time.sleep(3)  # some GPU time to lose

    post_fatal(rt, NODE)
    assert rt.act_on_attention() == 1
    assert slurm.reasons().get(NODE) == "computectl: xid: XID 79"
    drain = drains(rt, NODE)[0]

    rt.sweep()
    job_impact.after_sweep(rt)  # a second look (another sweep, a replica) adds nothing
    view = job_impact.impact_view(job_impact.tenant_impact(rt.store, T, None, rt.clock.now()))
    incidents = view["incidents"]
    assert isinstance(incidents, list) and len(incidents) == 1
    (one,) = incidents
    assert (one["work"], one["node"], one["tenant"], one["cause"]) == (hit, NODE, T, "drain")
    assert one["gpus"] == 4 and one["check"] == "xid" and one["reason"] == drain.reason
    expected = 4 * (drain.at - started(slurm, hit)).total_seconds() / 3600
    # Slurm keeps whole seconds: a second either way on each of 4 GPUs.
    assert abs(float(one["gpu_hours_lost"]) - expected) <= 4 * 1.01 / 3600
    assert expected > 4 * 2.5 / 3600
    assert view["gpu_hours_lost"] == one["gpu_hours_lost"]
    # The job on the node not drained is no incident; one record of the hit, whatever ran.
    assert [h.work for h in kept.hits(rt.store)] == [hit]
    totals = kept.lost_totals(rt.store)
    assert totals == [(T, "drain", float(one["gpu_hours_lost"]), 1)]


def test_a_job_that_ended_node_fail_is_linked_to_its_nodes_finding(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    node = "gpu-005"
    job = sbatch(slurm, node, 2)
    slurm.wait("the job to run", lambda: job in slurm.running_jobs(node), 30)
    # A finding on the node that is no reason to drain it (one failure of a check).
    rt.ingest.ingest(node, [result(node, "gpu_count", at=rt.clock.now(), evidence="7 of 8")])
    # The node's slurmd dies: slurmctld marks the node DOWN after SlurmdTimeout (30 s) and
    # the job ends NODE_FAIL. reset() (the fixture's) starts it again.
    pid = int((slurm.state_dir / "pids" / f"slurmd-{node}.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)

    def state() -> str:
        return slurm.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "State").strip()

    slurm.wait("the job to end NODE_FAIL", lambda: state() == "NODE_FAIL", 150)
    assert job_impact.after_sweep(rt) == []
    (hit,) = kept.hits(rt.store, T)
    assert (hit.work, hit.node, hit.cause, hit.state, hit.check) == (
        job, node, "node_fail", "node_fail", "gpu_count",
    )  # fmt: skip
    ended = datetime.fromisoformat(
        slurm.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "End").strip()
    ).astimezone()
    assert hit.end == ended
    assert abs(hit.gpu_hours - 2 * (ended - started(slurm, job)).total_seconds() / 3600) < 1e-6
    assert job_impact.after_sweep(rt) == [] and len(kept.hits(rt.store)) == 1
