"""The overview and capacity read node summaries: the same answer as whole nodes gave."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compute.domain import SUMMARY_FIELDS, Node, Rack, Room, Site
from compute.services import fleet
from compute.services.capacity import capacity
from compute.store import Store
from compute.views import overview_view
from health.policy import DrainOwner, Lifecycle, NodeHealth

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def node(name: str, rack: str, **kw: object) -> Node:
    base = Node(name, "train", rack, "H100", 8, Lifecycle.IN_SERVICE, T0, gpus_allocated=3)
    return base.evolve(**kw)


NODES = [
    node("a1", "r2"),
    node(
        "a2",
        "r1",
        state=Lifecycle.DRAINED,
        drain_reason="xid 79",
        drain_owner=DrainOwner.COMPUTECTL,
    ),
    node("a3", "nowhere", deferred_reason="jobs running", jobs_running=2),
    node("a4", "r1", health=NodeHealth(streaks={"ecc": 2}, repair_next=True)),
    node("a0", "elsewhere"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with s.transaction() as tx:
        tx.put_topology(
            [Site("s")],
            [Room("hall", "s")],
            [Rack("r1", "hall", 40e3), Rack("r2", "hall", 40e3)],
            [],
        )
        tx.add_nodes(NODES)
    yield s
    s.close()


def test_a_summary_is_the_node_without_its_health(store: Store) -> None:
    whole = {n.name: asdict(n) for n in store.nodes()}
    for s in store.summaries():
        assert {k: whole[s.name][k] for k in SUMMARY_FIELDS} == asdict(s)
    assert [s.name for s in store.summaries()] == sorted(n.name for n in NODES)


def test_capacity_counts_summaries_as_whole_nodes(store: Store) -> None:
    assert capacity(store.summaries(), []) == capacity(store.nodes(), [])


def test_the_overview_draws_each_rack_in_name_order_and_the_rest_unassigned(store: Store) -> None:
    view = overview_view(fleet.overview(store, T0))
    tiles = {r["name"]: [t["name"] for t in r["nodes"]] for r in view["racks"]}
    assert tiles == {"r1": ["a2", "a4"], "r2": ["a1"], "unassigned": ["a0", "a3"]}
    assert [d["node"] for d in view["drains"]] == ["a2"]
    assert view["deferred"] == [{"node": "a3", "pool": "train", "reason": "jobs running"}]
    assert view["gpus"] == {
        "installed": 40,
        "by_state": {"allocated": 12, "idle": 20, "drained": 8},
    }
