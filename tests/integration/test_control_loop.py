"""The whole loop on the simulated datacenter with the real store (SQLite in WAL mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.domain import EventKind
from compute.errors import NotFoundError, RefusedError
from compute.runtime import Runtime
from compute.services.capacity import capacity
from compute.services.rma import rma_report
from compute.testing import make_runtime
from health.policy import DrainOwner, Lifecycle

pytestmark = pytest.mark.integration


# Periodic burn-ins have their own test; elsewhere they would only add actions to filter.
# The simulated racks r01 and r02 draw more than their 40 kW: holding burn-ins there has its
# own tests (test_rack_budgets_simulated.py), and here would hold the repairs these follow.
NO_CHECKUPS = {"remediation": {"periodic_burn_in_days": 0}, "topology": {"hold": "off"}}


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    runtime = make_runtime(tmp_path, config=NO_CHECKUPS)
    runtime.sweep()  # adopt busy nodes, burn in idle ones
    runtime.sweep()  # idle ones pass and return
    yield runtime
    runtime.close()


def states(rt: Runtime) -> dict[str, Lifecycle]:
    return {n.name: n.state for n in rt.store.nodes()}


def test_new_nodes_are_adopted_or_burned_in_then_serve(rt: Runtime) -> None:
    assert set(states(rt).values()) == {Lifecycle.IN_SERVICE}
    kinds = {e.kind for e in rt.store.events(limit=500)}
    assert {EventKind.NODE_ADDED, EventKind.BURN_IN_STARTED, EventKind.BURN_IN_PASSED} <= kinds


def test_fatal_fault_is_drained_with_an_owned_reason_and_comes_back_after_repair(
    rt: Runtime,
) -> None:
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-003", "xid79", gpu=2)
    report = rt.sweep()
    assert [a["node"] for a in report.actions] == ["gpu-003"]
    node = rt.store.node("gpu-003")
    assert node is not None
    assert node.state is Lifecycle.DRAINED  # the crash ended its jobs: nothing to wait for
    assert node.drain_reason.startswith("computectl: gpu_count: 1 of 8 GPUs missing")
    with rt.datacenter.cluster_access() as c:
        assert c.nodes["gpu-003"].reason == node.drain_reason
    # Burn-in fails on a fatal check (the GPU is still gone): repair at once, no retry.
    for _ in range(4):
        rt.sweep()
    node = rt.store.node("gpu-003")
    assert node is not None and node.state is Lifecycle.REPAIR
    kinds = [e.kind for e in rt.store.events(node="gpu-003", limit=50)]
    assert kinds.count(EventKind.BURN_IN_FAILED) == 1 and kinds.count(EventKind.REPAIR) == 1
    # What the RMA ticket needs: the lost GPU named with its serial, the XID, the figures.
    report = rma_report(rt.store, node)
    assert report.suspect_gpus == [2] and report.xid_codes == [79]
    assert [g.serial for g in report.gpus if g.index == 2] == ["165230000202"]
    assert {r.check for r in report.burn_in} >= {"burnin", "gemm_bf16", "hbm_bandwidth"}
    text = report.as_text()
    assert "suspect GPUs: 2" in text and "XID codes seen: 79" in text
    # The technician fixes it; the operator hands it back; burn-in passes.
    rt.datacenter.repair("gpu-003")
    rt.nodes.resume("gpu-003", actor="operator:test")
    rt.sweep()
    node = rt.store.node("gpu-003")
    assert node is not None and node.state is Lifecycle.IN_SERVICE and not node.drain_reason
    actions = [a.action for a in rt.store.audit(target="gpu-003", limit=50)]
    assert "node.drain" in actions and "node.repair" in actions and "node.resume" in actions


def test_non_fatal_fault_needs_consecutive_failures(rt: Runtime) -> None:
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-005", "pcie_x8", gpu=0)
    for _ in range(2):
        assert not rt.sweep().actions
    actions = rt.sweep().actions
    assert actions and actions[0]["node"] == "gpu-005"
    assert actions[0]["reason"].startswith("computectl: pcie: GPU 0 at x8")


def test_a_drain_someone_else_made_survives_everything(rt: Runtime) -> None:
    assert rt.datacenter is not None
    with rt.datacenter.cluster_access() as c:
        c.drain("gpu-007", "admin: replacing PSU (ticket 4711)", "drain")
    rt.datacenter.inject("gpu-007", "xid79")  # even a fault does not make it ours
    for _ in range(3):
        rt.sweep()
    node = rt.store.node("gpu-007")
    assert node is not None
    assert node.drain_owner is DrainOwner.EXTERNAL
    assert node.drain_reason == "admin: replacing PSU (ticket 4711)"
    with pytest.raises(RefusedError, match="drained by someone else"):
        rt.nodes.resume("gpu-007", actor="operator:test")
    with pytest.raises(RefusedError, match="someone else"):
        rt.nodes.drain("gpu-007", "mine now", actor="operator:test")
    with rt.datacenter.cluster_access() as c:
        assert c.nodes["gpu-007"].reason == "admin: replacing PSU (ticket 4711)"
    # Forced, on purpose, and recorded.
    rt.nodes.resume("gpu-007", actor="operator:test", force=True)
    with rt.datacenter.cluster_access() as c:
        assert not c.nodes["gpu-007"].drain
    assert rt.store.audit(target="gpu-007", limit=1)[0].action == "node.resume_forced"


def test_an_admin_lifting_our_drain_is_respected(rt: Runtime) -> None:
    assert rt.datacenter is not None
    rt.nodes.drain("gpu-009", "maintenance", actor="operator:test")
    with rt.datacenter.cluster_access() as c:
        c.resume("gpu-009")
    rt.sweep()
    node = rt.store.node("gpu-009")
    assert node is not None and node.state is Lifecycle.IN_SERVICE
    assert rt.store.events(node="gpu-009", limit=1)[0].kind == EventKind.EXTERNAL_RESUME


def test_drain_budget_holds_back_further_drains(rt: Runtime) -> None:
    assert rt.datacenter is not None
    # inference pool: 8 nodes, budget max(1, floor(0.8)) = 1
    for node in ("gpu-025", "gpu-026", "gpu-027"):
        rt.datacenter.inject(node, "xid79")
    report = rt.sweep()
    assert [a["node"] for a in report.actions] == ["gpu-025"]
    assert sorted(d["node"] for d in report.deferred) == ["gpu-026", "gpu-027"]
    deferred = rt.store.events(kinds=[EventKind.DRAIN_DEFERRED], limit=10)
    assert {e.node for e in deferred} == {"gpu-026", "gpu-027"}
    assert "drain budget of pool inference exhausted (1/1" in deferred[0].reason
    rt.sweep()  # a second sweep does not repeat the deferral events
    assert len(rt.store.events(kinds=[EventKind.DRAIN_DEFERRED], limit=10)) == 2


def test_operator_drain_resume_and_burn_in(rt: Runtime) -> None:
    rt.nodes.drain("gpu-010", "firmware update", actor="operator:alice")
    node = rt.store.node("gpu-010")
    assert node is not None and node.drain_reason == "computectl: operator: firmware update"
    assert node.drain_actor == "operator:alice" and not node.automation_drain
    rt.sweep()
    assert rt.store.node("gpu-010").state in (Lifecycle.DRAINING, Lifecycle.DRAINED)  # type: ignore[union-attr]
    node = rt.nodes.resume("gpu-010", actor="operator:alice", skip_burn_in=True)
    assert node.state is Lifecycle.IN_SERVICE


def test_slow_gpu_is_found_by_burn_in_and_sent_to_repair(rt: Runtime) -> None:
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-011", "slow_gemm", gpu=4)
    rt.nodes.drain("gpu-011", "suspected slow", actor="operator:test", now_mode=True)
    rt.nodes.resume("gpu-011", actor="operator:test")
    for _ in range(3):
        rt.sweep()
    node = rt.store.node("gpu-011")
    assert node is not None and node.state is Lifecycle.REPAIR
    assert "gemm_bf16: GPU 4" in node.drain_reason


def test_unknown_node_changes_nothing(rt: Runtime) -> None:
    before = rt.store.events(limit=1)
    with pytest.raises(NotFoundError):
        rt.nodes.drain("gpu-999", "x", actor="operator:test")
    assert rt.store.events(limit=1) == before


def test_periodic_burn_in_finds_a_slow_gpu_on_an_idle_node(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, target_utilisation=0.0)  # every node idle
    rt.sweep()
    rt.sweep()  # new idle nodes burn in once and pass
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-012", "slow_gemm", gpu=6)  # invisible to passive checks
    rt.datacenter.advance(8 * 24 * 3600)  # a week later, burn-ins are due again
    found = None
    for _ in range(40):
        rt.sweep()
        node = rt.store.node("gpu-012")
        assert node is not None
        if node.state is Lifecycle.REPAIR:
            found = node
            break
    assert found is not None and "gemm_bf16: GPU 6" in found.drain_reason
    started = rt.store.events(kinds=[EventKind.BURN_IN_STARTED], limit=200)
    assert any("periodic" in e.reason for e in started)
    # a few per pool per sweep, never more than the budget: never most of the fleet at once
    out = sum(1 for n in rt.store.nodes() if n.state is Lifecycle.BURN_IN)
    assert out <= 3
    rt.close()


def test_capacity_sums_to_installed_through_a_faulty_run(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, fault_rate_per_node_hour=0.2, technician_repair_hours=2)
    assert rt.datacenter is not None
    seen: set[str] = set()
    for _ in range(40):
        rt.datacenter.advance(600)
        rt.sweep()
        cap = capacity(rt.store.nodes(), rt.store.allocations())
        assert cap.total == cap.installed == 256
        seen |= {r.state for r in cap.rows}
    assert {"allocated", "idle"} < seen and len(seen) >= 4
    rt.close()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    rt.sweep()
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-002", "xid79")
    rt.sweep()
    rt.close()
    again = make_runtime(tmp_path)
    node = again.store.node("gpu-002")
    assert node is not None and node.state is not Lifecycle.IN_SERVICE
    with again.datacenter.cluster_access() as c:  # type: ignore[union-attr]
        assert c.nodes["gpu-002"].drain
    again.close()
