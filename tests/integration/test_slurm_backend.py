"""The Slurm backend against a real Slurm 22.05 cluster (testenv/slurm), through the Runtime.

Nothing is mocked: computectl runs sinfo/squeue/scontrol, and the tests look
at the cluster with the same commands an operator would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.domain import EventKind, Node
from compute.errors import RefusedError
from compute.runtime import Runtime
from compute.testing import result
from health.policy import DrainOwner, Lifecycle
from scheduler.errors import NotFound
from scheduler.slurm import SlurmWorkloadManager
from tests.integration.conftest import SLURM_NODES, SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"


@pytest.fixture
def rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    """A control plane whose pools are the cluster's partitions (the TOML testenv writes)."""
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()


def stored(rt: Runtime, name: str) -> Node:
    node = rt.store.node(name)
    assert node is not None
    return node


def test_sweep_adopts_the_nodes_and_an_operator_drain_round_trips(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    nodes = {n.name: n for n in rt.store.nodes()}
    assert len(nodes) == SLURM_NODES
    assert {n.pool for n in nodes.values()} == {"training", "inference"}
    assert [n for n in nodes if nodes[n].pool == "inference"] == ["gpu-007", "gpu-008"]
    assert {(n.gpu_model, n.gpu_count, n.state) for n in nodes.values()} == {
        ("H100-SXM", 8, Lifecycle.IN_SERVICE)
    }
    assert {p.name: p.backend for p in rt.store.pools()} == {
        "training": "slurm",
        "inference": "slurm",
    }

    node = rt.nodes.drain("gpu-002", "fan noise", actor=OPERATOR)
    assert node.state is Lifecycle.DRAINED
    assert slurm.reasons() == {"gpu-002": "computectl: operator: fan noise"}
    assert slurm.state("gpu-002") == "drained"

    rt.nodes.resume("gpu-002", actor=OPERATOR, skip_burn_in=True)
    assert slurm.reasons() == {}
    # Slurm shows idle* until it has pinged the resumed node (~0.1 s).
    slurm.wait("gpu-002 to be idle", lambda: slurm.state("gpu-002") == "idle", 10)
    rt.sweep()
    assert stored(rt, "gpu-002").state is Lifecycle.IN_SERVICE


def test_an_admins_drain_survives_every_computectl_command(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    slurm.run("scontrol", "update", "nodename=gpu-003", "state=drain", "reason=admin: PSU")
    rt.sweep()
    node = stored(rt, "gpu-003")
    assert (node.state, node.drain_owner, node.drain_reason) == (
        Lifecycle.DRAINED,
        DrainOwner.EXTERNAL,
        "admin: PSU",
    )
    with pytest.raises(RefusedError, match="someone else"):
        rt.nodes.drain("gpu-003", "mine now", actor=OPERATOR)
    with pytest.raises(RefusedError, match="--force"):
        rt.nodes.resume("gpu-003", actor=OPERATOR)
    with pytest.raises(RefusedError):
        rt.nodes.resume("gpu-003", actor=OPERATOR, skip_burn_in=True)
    for _ in range(2):
        assert not rt.sweep().errors
    assert slurm.reasons() == {"gpu-003": "admin: PSU"}
    kinds = [e.kind for e in rt.store.events(node="gpu-003", limit=20)]
    assert kinds.count(EventKind.EXTERNAL_DRAIN) == 1


def test_a_drain_lets_running_jobs_finish_and_down_ends_them(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    short = slurm.sbatch("gpu-004", 4, gpus=4)
    long = slurm.sbatch("gpu-005", 300, gpus=8)
    slurm.wait("both jobs to run", lambda: len(slurm.running_jobs()) == 2)
    rt.sweep()
    assert (stored(rt, "gpu-004").jobs_running, stored(rt, "gpu-004").gpus_allocated) == (1, 4)
    allocations = {(a.node, a.job, a.tenant, a.gpus) for a in rt.store.allocations()}
    assert allocations == {("gpu-004", short, "root", 4), ("gpu-005", long, "root", 8)}

    # drain: the job runs on, the node is draining until it ends.
    assert rt.nodes.drain("gpu-004", "bad DIMM", actor=OPERATOR).state is Lifecycle.DRAINING
    assert slurm.running_jobs("gpu-004") == [short]
    assert slurm.state("gpu-004") == "draining"
    rt.sweep()
    assert stored(rt, "gpu-004").state is Lifecycle.DRAINING
    slurm.wait("the short job to end", lambda: not slurm.running_jobs("gpu-004"))
    # Slurm says drained once the job has finished completing (on a loaded machine, a moment
    # after squeue stops listing it as running); until then draining is the truth.
    slurm.wait("gpu-004 to be drained", lambda: slurm.state("gpu-004") == "drained", 10)
    rt.sweep()
    assert stored(rt, "gpu-004").state is Lifecycle.DRAINED

    # down: Slurm ends the job now (it requeues it); the node stays drained with our reason.
    assert rt.nodes.drain("gpu-005", "xid 79", actor=OPERATOR, now_mode=True).state is (
        Lifecycle.DRAINED
    )
    assert long not in slurm.running_jobs()
    assert slurm.reasons()["gpu-005"] == "computectl: operator: xid 79"
    slurm.wait("gpu-005 to be drained", lambda: slurm.state("gpu-005") == "drained", 10)
    rt.sweep()
    node = stored(rt, "gpu-005")
    assert (node.state, node.jobs_running) == (Lifecycle.DRAINED, 0)


def test_a_fatal_health_result_drains_the_node_in_slurm(rt: Runtime, slurm: SlurmCluster) -> None:
    rt.ingest.ingest(
        "gpu-006",
        [result("gpu-006", "gpu_count", "fail", fatal=True, at=rt.clock.now(), evidence="7 of 8")],
    )
    report = rt.sweep()
    assert [(a["node"], a["action"]) for a in report.actions] == [("gpu-006", "drain")]
    reason = slurm.reasons()["gpu-006"]
    assert reason.startswith("computectl: gpu_count")
    node = stored(rt, "gpu-006")
    assert (node.state, node.drain_reason) == (Lifecycle.DRAINED, reason)


def test_the_backend_reads_nodes_jobs_and_refuses_unknown_nodes(slurm: SlurmCluster) -> None:
    wm = SlurmWorkloadManager.create({"inference": "inf"}, slurm_conf=slurm.slurm_conf)
    job = slurm.sbatch("gpu-008", 300, gpus=2, partition="inference")
    slurm.wait("the job to run", lambda: bool(slurm.running_jobs("gpu-008")))
    assert [n.name for n in wm.list_nodes()] == ["gpu-007", "gpu-008"]
    status = wm.node("gpu-008")
    assert (status.pool, status.gpus_allocated, status.jobs, status.state) == ("inf", 2, 1, "mixed")
    assert [(j.id, j.tenant, j.gpus) for j in wm.jobs_on("gpu-008")] == [(job, "root", 2)]
    with pytest.raises(NotFound):
        wm.node("gpu-001")  # a training node: not this backend's
    with pytest.raises(NotFound):
        wm.drain("gpu-999", "computectl: test")
    # Idempotent: draining twice replaces the reason; resuming twice is fine.
    wm.drain("gpu-007", "computectl: one")
    wm.drain("gpu-007", "computectl: two")
    assert slurm.reasons() == {"gpu-007": "computectl: two"}
    wm.resume("gpu-007")
    wm.resume("gpu-007")
    assert not wm.node("gpu-007").drain
