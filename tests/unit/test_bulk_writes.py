"""Rows inserted many at once (the driver handed each column converted, on SQLite) read back
as they were written; the topology written again updates what it names and keeps the rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compute.domain import Allocation, AuditEntry, Event, Gpu, Pool, Rack, RackPower, Room, Site
from compute.store import Store
from compute.store.models import PoolRow
from health.result import CheckResult, Status, Suite

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def test_rows_read_back_as_written(store: Store) -> None:
    events = [
        Event(T0 + timedelta(seconds=i), f"n{i}", "drain", f"r{i}", "op", "p", {"i": i, "x": [1]})
        for i in range(5)
    ]
    audit = [AuditEntry(T0, "op", "node.drain", f"n{i}", {"why": "é", "n": None}) for i in range(3)]
    results = [
        CheckResult(
            node="n1",
            check="xid",
            version="2",
            status=Status.FAIL,
            at=T0 + timedelta(minutes=i),
            suite=Suite.PASSIVE,
            fatal=True,
            evidence="Xid 79",
            values={"code": 79, "gpu": 3},
            gpus=(3, 5),
        )
        for i in range(3)
    ]
    gpus = [Gpu("n1", i, f"GPU-{i}", "H100", f"s{i}") for i in range(8)]
    with store.transaction() as tx:
        tx.add_events(events)
        tx.add_audits(audit)
        tx.add_results(results)
        tx.add_gpus(gpus)
        tx.replace_allocations([Allocation("t", "p", "n1", 8, "42")])
        tx.add_rack_power([RackPower("r1", T0, 1234.5, 0.0)])
    assert store.events() == [
        Event(e.at, e.node, e.kind, e.reason, e.actor, e.pool, e.detail, id=5 - i)
        for i, e in enumerate(reversed(events))
    ]
    assert [(a.target, a.detail) for a in store.audit()] == [
        (a.target, a.detail) for a in reversed(audit)
    ]
    assert store.results("n1") == list(reversed(results))
    assert store.gpus("n1") == gpus
    assert store.allocations() == [Allocation("t", "p", "n1", 8, "42")]
    assert [(p.rack, p.at, p.watts) for p in store.latest_rack_power()] == [("r1", T0, 1234.5)]


def test_topology_written_again_updates_and_keeps_the_rest(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_topology(
            [Site("s")], [Room("a", "s")], [Rack("r1", "a", 10.0)], [Pool("p", "slurm", "H100")]
        )
    with store.transaction() as tx:
        pool = tx.s.get(PoolRow, "p")
        assert pool is not None
        pool.mode = "observe"
    with store.transaction() as tx:
        tx.put_topology(
            [Site("s")],
            [Room("a", "s")],
            [Rack("r1", "a", 20.0), Rack("r2", "a", 5.0)],
            [Pool("p", "slurm", "H200"), Pool("q", "kubernetes", "B200")],
        )
    assert [(r.name, r.power_budget_watts) for r in store.racks()] == [("r1", 20.0), ("r2", 5.0)]
    assert [(p.name, p.gpu_model, p.mode) for p in store.pools()] == [
        ("p", "H200", "observe"),
        ("q", "B200", "enforce"),
    ]
