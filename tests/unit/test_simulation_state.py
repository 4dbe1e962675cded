"""The simulated world shared between processes: each sees the others' changes, reads write
nothing, and a world read back from the file is the world that was kept in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compute.simulation import SimulatedDatacenter
from compute.simulation.worldfile import COMPACT_EVERY
from compute.testing import EPOCH, make_settings
from health.simulated import SimulatedTelemetry
from scheduler.simulated import SimulatedTenants, SimulatedWorkloadManager
from scheduler.tenants import GpuQuota, TenantSpec


def _dc(tmp_path: Path, persist: bool = True, **simulation: Any) -> SimulatedDatacenter:
    settings = make_settings(tmp_path, racks=2, nodes_per_rack=4, **simulation)
    return SimulatedDatacenter(
        settings.simulation,
        settings.effective_pools,
        tmp_path / "simulation" / "state.json" if persist else None,
        start=EPOCH.timestamp(),
    )


def _seen(dc: SimulatedDatacenter) -> tuple[Any, ...]:
    """Everything a control plane can observe of the world, and what drives what comes next."""
    telemetry = SimulatedTelemetry(dc.fleet_access)
    manager = SimulatedWorkloadManager(dc.cluster_access)
    with dc.session():
        snaps = list(telemetry.snapshots(dict.fromkeys(sorted(dc.fleet.nodes))))
        return (
            snaps,
            manager.list_nodes(),
            sorted(manager.allocations(), key=lambda a: (a.job, a.node)),
            sorted((j.id, j.start, tuple(j.nodes), j.duration) for j in dc.cluster.jobs.values()),
            dc.cluster.tenants,
            [n.faults for n in dc.fleet.nodes.values()],
            dc.fleet.rng.getstate(),
            dc.cluster.rng.getstate(),
            dc.fleet.next_fault_at,
            dc.cluster.next_arrival,
            dc.cluster.next_id,
        )


def test_two_holders_of_one_world_see_each_others_changes(tmp_path: Path) -> None:
    a = _dc(tmp_path)
    b = _dc(tmp_path)  # another process: its own copy in memory, the same file
    SimulatedWorkloadManager(a.cluster_access).drain("gpu-003", "computectl: test", "drain")
    with b.cluster_access() as c:
        assert c.nodes["gpu-003"].drain and c.nodes["gpu-003"].reason == "computectl: test"
    b.inject("gpu-005", "xid79", gpu=1)
    with a.fleet_access() as f:
        assert not f.nodes["gpu-005"].gpus[1].present
    a.advance(600)
    assert b.now() == a.now()
    tenants = SimulatedTenants(b.cluster_access)
    tenants.apply(
        TenantSpec("borealis-ai", users=("ann",), quotas=(GpuQuota("training", "H100-SXM", 16),))
    )
    with a.cluster_access() as c:
        job = c.submit("borealis-ai", "training", 8, 1, hours=1)
    assert tenants.jobs("borealis-ai")[0].id == str(job.id)
    tenants.delete("borealis-ai", force=True)
    with a.cluster_access() as c:
        assert "borealis-ai" not in c.tenants and job.id not in c.jobs
    assert _seen(a) == _seen(b)


def test_a_read_writes_nothing(tmp_path: Path) -> None:
    dc = _dc(tmp_path)
    other = _dc(tmp_path)
    files = sorted((tmp_path / "simulation").iterdir())

    def stamps() -> list[tuple[str, int, int]]:
        return [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files]

    before = stamps()
    dc.now()
    dc.inventory()
    _seen(dc)
    _seen(other)
    assert stamps() == before
    dc.inject("gpu-001", "pcie_x8")
    assert stamps() != before


def test_a_world_read_back_is_the_world_kept_in_memory(tmp_path: Path) -> None:
    """The same seed and the same calls, one world in memory only, one through the file."""
    kept = _dc(tmp_path / "mem", persist=False, fault_rate_per_node_hour=0.5)
    filed = _dc(tmp_path / "file", fault_rate_per_node_hour=0.5)
    for dc in (kept, filed):
        dc.advance(4 * 3600)
        dc.inject("gpu-002", "xid48", gpu=3)
        with dc.cluster_access() as c:
            c.drain("gpu-004", "computectl: x", "down")
            c.submit("fjord-ai", "training", 8, 2, hours=3)
        with dc.fleet_access() as f:
            f.reset("gpu-002")
        dc.advance(3600)
    assert _seen(kept) == _seen(filed)
    assert _seen(_dc(tmp_path / "file", fault_rate_per_node_hour=0.5)) == _seen(kept)


def test_a_holder_that_fell_far_behind_reads_the_whole_world_again(tmp_path: Path) -> None:
    busy = _dc(tmp_path)
    idle = _dc(tmp_path)
    manager = SimulatedWorkloadManager(busy.cluster_access)
    for i in range(COMPACT_EVERY + 2):  # past a compaction: ended jobs' markers are gone
        with busy.cluster_access() as c:
            c.cancel(c.submit("fjord-ai", "training", 8, 1, hours=1).id)
        manager.drain(f"gpu-00{1 + i % 8}", f"computectl: {i}", "drain")
    assert _seen(idle) == _seen(busy)
