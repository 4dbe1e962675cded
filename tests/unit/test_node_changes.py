"""A node is written only where it changed (Tx.put_changes), still on the version it was
read at: a node that changed nothing is not written, a stale one writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compute.domain import Node
from compute.errors import StaleWrite
from compute.store import Store
from compute.store.rows import changed_columns, same_health
from compute.testing import result
from health.policy import Lifecycle, NodeHealth, PolicyConfig, observe

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def node(name: str) -> Node:
    return Node(
        name=name,
        pool="train",
        rack="r1",
        gpu_model="H100",
        gpu_count=8,
        state=Lifecycle.IN_SERVICE,
        state_since=T0,
        health=NodeHealth(streaks={"xid": 1}),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with s.transaction() as tx:
        tx.add_nodes([node(f"n{i}") for i in range(4)])
    yield s
    s.close()


def test_only_what_changed_is_written_on_the_version_read(store: Store) -> None:
    n0, n1, n2, n3 = store.nodes()
    later = T0 + timedelta(minutes=1)
    after = [
        n0,  # nothing
        n1.evolve(power_watts=5000.0, last_seen=later),
        n2.evolve(power_watts=4000.0, last_seen=later),
        n3.evolve(state=Lifecycle.DRAINED, health=n3.health.evolve(streaks={"xid": 2})),
    ]
    with store.transaction() as tx:
        out = tx.put_changes([(b, a) for b, a in zip([n0, n1, n2, n3], after, strict=True)])
    assert [n.version for n in out] == [0, 1, 1, 1]
    assert store.nodes() == out
    with pytest.raises(StaleWrite), store.transaction() as tx:
        tx.put_changes([(n0, n0.evolve(jobs_running=1)), (n1, n1.evolve(jobs_running=1))])
    assert [n.jobs_running for n in store.nodes()] == [0, 0, 0, 0]


def test_a_passing_check_leaves_no_streak_of_zero_so_no_change() -> None:
    # Streaks of zero are not stored (NodeHealth.to_json): folding a pass removes the streak,
    # so a node whose checks pass again is written for its telemetry alone.
    before = node("n").evolve(health=NodeHealth(streaks={"xid": 1}))
    health = observe(before.health, [result("n", "ecc", "pass")], PolicyConfig())
    assert health.streaks == {"xid": 1} and same_health(before.health, health)
    healed = observe(health, [result("n", "xid", "pass")], PolicyConfig())
    assert healed.streaks == {} and NodeHealth.from_json(healed.to_json()) == healed
    after = before.evolve(health=health, power_watts=1.0)
    assert changed_columns(before, after) == ("power_watts",)
