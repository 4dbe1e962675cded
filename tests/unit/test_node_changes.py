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
from health.policy import Lifecycle, NodeHealth

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


def test_streaks_of_zero_are_no_change_as_they_are_not_stored() -> None:
    a = NodeHealth(streaks={"xid": 1})
    assert same_health(a, NodeHealth(streaks={"xid": 1, "nvlink": 0}))
    assert not same_health(a, NodeHealth(streaks={"xid": 0, "nvlink": 0}))
    assert not same_health(a, NodeHealth(streaks={"xid": 1, "nvlink": 0}, burn_in_failures=1))
    b = node("n").evolve(health=NodeHealth(streaks={"xid": 1, "ecc": 0}), power_watts=1.0)
    assert changed_columns(node("n"), b) == ("power_watts",)
