"""What a listing tells of where a node sits, and how an observed pool's nodes are adopted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from compute.domain import EventKind
from compute.services.inventory import reconcile
from health.policy import Lifecycle
from scheduler.protocol import NodeStatus

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
IDLE = NodeStatus("n1", "train", "H100", 8, 0, drain=False, reason="", jobs=0)


def test_rack_and_switch_follow_the_listing_an_unknown_rack_keeps_the_configured_one() -> None:
    first = reconcile({}, [replace(IDLE, rack="r1", switch="leaf1")], {}, "in_service", T0)
    node = first.nodes["n1"]
    assert (node.rack, node.switch) == ("r1", "leaf1")
    moved = reconcile({"n1": node}, [replace(IDLE, rack="r2")], {}, "in_service", T0)
    assert (moved.nodes["n1"].rack, moved.nodes["n1"].switch) == ("r2", "")
    unknown = reconcile({"n1": moved.nodes["n1"]}, [IDLE], {}, "in_service", T0)
    assert unknown.nodes["n1"].rack == "r2"
    configured = reconcile({}, [IDLE], {"n1": "rack-7"}, "in_service", T0)
    assert configured.nodes["n1"].rack == "rack-7"


def test_an_observed_pool_adopts_idle_nodes_as_they_are_and_says_what_it_would_do() -> None:
    busy = replace(IDLE, name="n2", jobs=1, gpus_allocated=8)
    synced = reconcile({}, [IDLE, busy], {}, "burn_in", T0, observed={"train"})
    assert {n.state for n in synced.nodes.values()} == {Lifecycle.IN_SERVICE}
    would = [e for e in synced.events if e.kind == EventKind.WOULD_ACT]
    assert [(e.node, e.detail["action"]) for e in would] == [("n1", "start_burn_in")]
    # Enforced, the same idle node is taken for burn-in first.
    enforced = reconcile({}, [IDLE], {}, "burn_in", T0 + timedelta(seconds=1))
    assert enforced.nodes["n1"].state is Lifecycle.BURN_IN
    assert not [e for e in enforced.events if e.kind == EventKind.WOULD_ACT]
