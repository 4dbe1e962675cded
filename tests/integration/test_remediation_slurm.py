"""Remediation's safety rules on the real Slurm test cluster (issue: voluntary work never
delays a safety drain; a burn-in that cannot run is no evidence; one bad record never
stops the rest)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.domain import EventKind
from compute.runtime import Runtime
from compute.testing import result
from health.policy import Action, Decision, Lifecycle
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_burn_in_reservations(slurm: SlurmCluster) -> Iterator[None]:
    """Burn-in reservations outlive a test's control plane: none before, none after."""

    def clear() -> None:
        jobs = slurm.run("squeue", "-h", "-o", "%A").split()
        if jobs:
            slurm.run("scancel", *jobs)
            slurm.wait("jobs to end", lambda: not slurm.run("squeue", "-h", "-o", "%A").strip())
        out = slurm.run("scontrol", "-o", "show", "reservation", check=False)
        for word in out.split():
            if word.startswith("ReservationName=computectl-burnin-"):
                slurm.run("scontrol", "delete", word)
        slurm.reset()

    clear()
    yield
    clear()


def _pool_nodes(rt: Runtime, pool: str) -> list[str]:
    return sorted(n.name for n in rt.store.nodes(pool=pool))


def test_a_pool_without_a_burn_in_launcher_never_drains_for_periodic_burn_in(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    # What `testenv/slurm env` generates: no burn_in_report_url, so no launcher.
    rt = runtime_over(slurm.computectl_toml, tmp_path, periodic_burn_in_days=7)
    try:
        for _ in range(3):
            report = rt.sweep()
            assert not report.actions, report.actions
        assert slurm.reasons() == {}
        assert {n.state for n in rt.store.nodes()} == {Lifecycle.IN_SERVICE}
    finally:
        rt.close()


def test_a_fatal_fault_drains_while_a_periodic_burn_in_holds_the_budget(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    # A launcher that starts real sbatch jobs (they report nowhere: the burn-in stays
    # under way for this test), and a budget of one node per pool.
    rt = runtime_over(
        slurm.computectl_toml,
        tmp_path,
        pool_table={"burn_in_report_url": "http://127.0.0.1:9/"},
        periodic_burn_in_days=7,
        drain_budget_fraction=0.01,
        drain_budget_min_nodes=1,
    )
    try:
        # runtime_over's first sweep started one periodic burn-in per pool.
        burning = [n for n in rt.store.nodes(pool="training") if n.state is Lifecycle.BURN_IN]
        assert len(burning) == 1 and burning[0].health.burn_in_voluntary
        # Started for real: the node sits in computectl's burn-in reservation.
        reservations = slurm.run("scontrol", "show", "reservation")
        assert f"computectl-burnin-{burning[0].name}" in reservations
        victim = next(n for n in _pool_nodes(rt, "training") if n != burning[0].name)
        rt.ingest.ingest(
            victim,
            [result(victim, "xid", "fail", fatal=True, at=rt.clock.now(), evidence="XID 79")],
        )
        report = rt.sweep()
        assert (victim, "drain") in [(a["node"], a["action"]) for a in report.actions]
        assert not report.deferred
        assert slurm.reasons()[victim].startswith("computectl: xid")
        assert rt.store.node(victim).state is Lifecycle.DRAINED  # type: ignore[union-attr]
        # With a fault out, no further periodic burn-in starts in that pool.
        assert sum(n.state is Lifecycle.BURN_IN for n in rt.store.nodes(pool="training")) == 1
    finally:
        rt.close()


def test_a_drain_whose_reason_cannot_be_stored_is_recorded_and_sweeps_go_on(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    """A reason with a byte that is not UTF-8 (Python's surrogateescape) reaches Slurm; the
    store refuses it as it is. The drain is still recorded, and remediation goes on."""
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    try:
        first, second = _pool_nodes(rt, "training")[:2]
        bad = Decision(first, Action.DRAIN, "computectl: operator: bad \udcff byte")
        rt.remediator.apply(rt.store.node(first), bad, actor="operator:test")  # type: ignore[arg-type]
        node = rt.store.node(first)
        assert node is not None and node.state is Lifecycle.DRAINED
        assert "\ufffd" in node.drain_reason
        assert first in slurm.reasons()
        rt.ingest.ingest(
            second,
            [result(second, "xid", "fail", fatal=True, at=rt.clock.now(), evidence="XID 79")],
        )
        report = rt.sweep()
        assert not report.skipped and not report.failed_backends, report
        assert slurm.reasons()[second].startswith("computectl: xid")
        assert rt.store.node(second).state is Lifecycle.DRAINED  # type: ignore[union-attr]
        # The first node is still ours as far as Slurm's reading of it goes: never "someone
        # else's drain" because of how its reason was stored.
        report = rt.sweep()
        assert not report.skipped and not report.errors, report
        assert rt.store.node(first).drain_owner.value == "computectl"  # type: ignore[union-attr]
        assert rt.store.meta("last_good_sweep") is not None
    finally:
        rt.close()


def _over_partition(
    slurm: SlurmCluster, rt: Runtime, data_dir: Path, partitions: dict[str, str]
) -> Runtime:
    """A second control plane on the same store whose pools read other partitions."""
    from compute.config import load_settings

    over = [p.model_dump(mode="json", exclude_none=True) for p in rt.settings.effective_pools]
    for p in over:
        p["slurm"]["partition"] = partitions.get(p["name"], p["slurm"]["partition"])
    settings = load_settings(
        slurm.computectl_toml,
        env={},
        overrides={
            "data_dir": str(data_dir),
            "pools": over,
            "remediation": {"new_nodes": "in_service", "periodic_burn_in_days": 0},
        },
    )
    return Runtime.build(settings)


def test_a_node_taken_out_of_slurm_leaves_service_and_comes_back_as_it_was(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    try:
        training = _pool_nodes(rt, "training")
        gone, in_repair = training[-1], training[-2]
        fix = Decision(in_repair, Action.REPAIR, "computectl: repair: PSU")
        rt.remediator.apply(rt.store.node(in_repair), fix)  # type: ignore[arg-type]
        # The training pool reads a partition without those two nodes.
        slurm.run("scontrol", "create", "partition=shrunk", f"nodes={','.join(training[:-2])}")
        try:
            rt2 = _over_partition(slurm, rt, tmp_path, {"training": "shrunk"})
            try:
                rt2.sweep()
                for name in (gone, in_repair):
                    node = rt2.store.node(name)
                    assert node is not None and node.state is Lifecycle.RETIRED
                    assert node.backend_state == "gone"
                    kinds = [e.kind for e in rt2.store.events(node=name, limit=5)]
                    assert EventKind.NODE_MISSING in kinds
                usable = [n for n in rt2.store.nodes(pool="training") if n.state.value != "retired"]
                assert len(usable) == len(training) - 2
            finally:
                rt2.close()
        finally:
            slurm.run("scontrol", "delete", "partition=shrunk")
        # Listed again: the healthy node comes back like a new one, the other to repair.
        slurm.run("scontrol", "update", f"nodename={in_repair}", "state=resume")
        rt.sweep()
        node = rt.store.node(gone)
        assert node is not None and node.state is Lifecycle.IN_SERVICE
        assert EventKind.NODE_RETURNED in [e.kind for e in rt.store.events(node=gone, limit=5)]
        node = rt.store.node(in_repair)
        assert node is not None and node.state is Lifecycle.REPAIR
        assert slurm.reasons()[in_repair].startswith("computectl: repair:")
    finally:
        rt.close()


def test_a_listing_with_none_of_a_pools_nodes_is_not_read_as_the_pool_gone(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    slurm.run("scontrol", "create", "partition=empty")
    try:
        rt2 = _over_partition(slurm, rt, tmp_path, {"training": "empty"})
        try:
            report = rt2.sweep()
            assert any("pool training" in e for e in report.errors), report.errors
            assert "pool training" in report.failed_backends
            assert {n.state for n in rt2.store.nodes(pool="training")} == {Lifecycle.IN_SERVICE}
        finally:
            rt2.close()
    finally:
        slurm.run("scontrol", "delete", "partition=empty")
        rt.close()


def test_a_node_moved_to_another_partition_moves_pool(slurm: SlurmCluster, tmp_path: Path) -> None:
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    training = _pool_nodes(rt, "training")
    inference = _pool_nodes(rt, "inference")
    moved = training[-1]
    try:
        slurm.run(
            "scontrol", "update", "partitionname=training", f"nodes={','.join(training[:-1])}"
        )
        slurm.run(
            "scontrol",
            "update",
            "partitionname=inference",
            f"nodes={','.join([moved, *inference])}",
        )
        report = rt.sweep()
        assert not report.errors, report.errors
        node = rt.store.node(moved)
        assert node is not None and (node.pool, node.state) == ("inference", Lifecycle.IN_SERVICE)
        kinds = [e.kind for e in rt.store.events(node=moved, limit=5)]
        assert EventKind.POOL_CHANGED in kinds
    finally:
        slurm.run("scontrol", "update", "partitionname=training", f"nodes={','.join(training)}")
        slurm.run("scontrol", "update", "partitionname=inference", f"nodes={','.join(inference)}")
        rt.close()


def test_readiness_says_when_a_backend_is_down_and_its_nodes_stay_as_they_were(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from compute.api import create_app
    from compute.auth.testing import operator_headers

    rt = runtime_over(slurm.computectl_toml, tmp_path)
    try:
        with TestClient(create_app(rt), headers=operator_headers(rt.store)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.json()
            assert ready.json()["failing_backends"] == []
            pid = slurm.ctld_pid()
            os.kill(pid, signal.SIGTERM)
            slurm.wait("slurmctld to exit", lambda: not Path(f"/proc/{pid}").exists(), 30)
            try:
                report = rt.sweep()
                assert report.failed_backends and not report.skipped
                # A listing that failed says nothing: no node is taken for gone.
                assert {n.state for n in rt.store.nodes()} == {Lifecycle.IN_SERVICE}
                body = client.get("/readyz").json()
                assert any("backends not answering: slurm" in r for r in body["reasons"])
                metrics = client.get("/metrics").text
                assert 'computectl_sweep_backend_up{backend="slurm (' in metrics
                # Readiness fails once the last good sweep is older than the limit.
                good = rt.store.meta("last_good_sweep")
                assert good is not None
                with rt.store.transaction() as tx:
                    tx.set_meta("last_good_sweep", {**good, "wall_at": good["wall_at"] - 3600})
                stale = client.get("/readyz")
                assert stale.status_code == 503
                assert any("reached every backend was" in r for r in stale.json()["reasons"])
            finally:
                slurm.up()
            assert not rt.sweep().failed_backends
            assert client.get("/readyz").status_code == 200
            assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        rt.close()
