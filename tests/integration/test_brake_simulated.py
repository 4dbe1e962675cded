"""The brake and observe mode on the simulated datacenter: a rack-wide power fault opens one
incident and drains at most the configured number of the rack's nodes, not the rack; an
observed pool records what it would do and leaves its nodes as they are."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.domain import EventKind, Node
from compute.runtime import Runtime
from compute.services import incidents, pools
from compute.services.brake import threshold
from compute.services.gate import DRAIN_HELD, MODE_TTL_SECONDS, WOULD_ACT
from compute.testing import make_runtime
from health.policy import Lifecycle

pytestmark = pytest.mark.integration

# The budget would otherwise hold most drains back first: here only the brake may.
CONFIG = {
    "remediation": {
        "drain_budget_fraction": 1.0,
        "new_nodes": "in_service",
        "periodic_burn_in_days": 0,
    }
}


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path, CONFIG, racks=4)
    runtime.sweep()
    yield runtime
    runtime.close()


def rack_nodes(rt: Runtime, rack: str) -> list[Node]:
    return [n for n in rt.store.nodes() if n.rack == rack]


def test_rack_wide_power_fault_opens_one_incident_not_a_drained_rack(rt: Runtime) -> None:
    rack = rack_nodes(rt, "r01")
    assert len(rack) == 8
    for n in rack:
        rt.datacenter.inject(n.name, "power_brake")  # type: ignore[union-attr]
    for _ in range(4):
        rt.sweep()
    limit = threshold("rack", len(rack), rt.settings.remediation.brake) - 1
    after = rack_nodes(rt, "r01")
    out = [n.name for n in after if n.state is not Lifecycle.IN_SERVICE]
    assert 0 < len(out) <= limit
    (inc,) = incidents.list_incidents(rt.store)
    assert (inc.scope_kind, inc.scope, inc.state) == ("rack", "r01", "open")
    assert inc.cause == "power_or_cooling"
    assert set(inc.nodes) == {n.name for n in rack}
    assert inc.held == len(rack) - len(out)
    held = rt.store.events(kinds=[DRAIN_HELD], limit=1000)
    assert sorted(e.node for e in held) == sorted(set(inc.nodes) - set(out))
    # Held nodes stay in service in the workload manager too.
    backend = {s.name: s for s in rt.backends.for_pool("training").list_nodes()}
    assert sum(backend[n.name].drain for n in rack) == len(out)
    # Released: the held drains go ahead at the next sweep.
    incidents.release(rt.store, rt.clock, inc.id, "operator:test")
    rt.sweep()
    assert all(n.state is not Lifecycle.IN_SERVICE for n in rack_nodes(rt, "r01"))
    assert len(incidents.list_incidents(rt.store)) == 1


def test_single_failures_in_other_racks_still_drain(rt: Runtime) -> None:
    for name in ("gpu-001", "gpu-009", "gpu-017"):
        rt.datacenter.inject(name, "xid79")  # type: ignore[union-attr]
    rt.sweep()
    drains = rt.store.events(kinds=[EventKind.DRAIN], limit=100)
    assert {e.node for e in drains} == {"gpu-001", "gpu-009", "gpu-017"}
    assert incidents.list_incidents(rt.store) == []


def test_observed_pool_records_and_leaves_nodes_alone(rt: Runtime) -> None:
    pools.set_mode(rt.store, rt.clock, "training", "observe", None, "operator:test")
    time.sleep(MODE_TTL_SECONDS)
    before = {s.name: (s.drain, s.reason) for s in rt.backends.for_pool("training").list_nodes()}
    rt.datacenter.inject("gpu-002", "xid79")  # type: ignore[union-attr]
    for _ in range(3):
        rt.sweep()
    after = {s.name: (s.drain, s.reason) for s in rt.backends.for_pool("training").list_nodes()}
    assert after == before
    (would,) = rt.store.events(kinds=[WOULD_ACT], limit=100)
    assert (would.node, would.detail["action"]) == ("gpu-002", "drain")
    rep = pools.report(rt.store, rt.clock, "training", pools.parse_window("1h"))
    assert rep.by_action == {"drain": {would.detail["check"]: 1}}
    assert rep.nodes == {"drain": ["gpu-002"]}
    # An operator's own drain still acts.
    rt.nodes.drain("gpu-003", "operator check", actor="operator:test")
    backend = {s.name: s for s in rt.backends.for_pool("training").list_nodes()}
    assert backend["gpu-003"].drain
    pools.set_mode(rt.store, rt.clock, "training", "enforce", None, "operator:test")
    time.sleep(MODE_TTL_SECONDS)  # the acting gate reads modes at most this often
    rt.sweep()
    node = rt.store.node("gpu-002")
    assert node is not None and node.state is not Lifecycle.IN_SERVICE


def test_a_restart_keeps_the_modes_operators_gave(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, CONFIG)
    pools.set_mode(rt.store, rt.clock, "training", "observe", "xid", "operator:test")
    pools.set_mode(rt.store, rt.clock, "inference", "observe", None, "operator:test")
    rt.close()
    again = make_runtime(tmp_path, CONFIG)
    try:
        modes = {p.name: (p.mode, p.observe_checks) for p in again.store.pools()}
        assert modes == {"training": ("enforce", ("xid",)), "inference": ("observe", ())}
    finally:
        again.close()
