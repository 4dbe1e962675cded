"""Every write of a node is conditional on the version it was read at: nothing is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compute.clock import FuncClock
from compute.domain import Event, EventKind, Node
from compute.errors import NotFoundError, StaleWrite
from compute.services.ingest import Ingest
from compute.services.inventory import GONE, reconcile
from compute.services.sweep_store import store_learnt
from compute.store import Store
from compute.testing import result
from health.policy import Lifecycle, NodeHealth, PolicyConfig
from scheduler.protocol import NodeStatus

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with s.transaction() as tx:
        tx.add_nodes([node(f"n{i}") for i in range(3)])
    yield s
    s.close()


def node(name: str) -> Node:
    return Node(
        name=name,
        pool="train",
        rack="r1",
        gpu_model="H100",
        gpu_count=8,
        state=Lifecycle.IN_SERVICE,
        state_since=T0,
    )


def stored(store: Store, name: str) -> Node:
    n = store.node(name)
    assert n is not None
    return n


def test_each_write_bumps_the_version_and_a_stale_copy_writes_nothing(store: Store) -> None:
    read = stored(store, "n0")
    assert read.version == 0
    with store.transaction() as tx:
        written = tx.put_node(read.evolve(jobs_running=3))
    assert written.version == 1 == stored(store, "n0").version
    with pytest.raises(StaleWrite), store.transaction() as tx:
        tx.put_node(read.evolve(drain_reason="stale"))
    assert stored(store, "n0").jobs_running == 3
    assert stored(store, "n0").drain_reason == ""


def test_a_batch_with_one_stale_node_writes_none(store: Store) -> None:
    nodes = store.nodes()
    with store.transaction() as tx:
        tx.put_node(nodes[1].evolve(jobs_running=1))
    with pytest.raises(StaleWrite), store.transaction() as tx:
        tx.put_nodes([n.evolve(power_watts=9.0) for n in nodes])
    assert [n.power_watts for n in store.nodes()] == [0.0, 0.0, 0.0]


def test_update_node_changes_the_node_as_stored_now(store: Store) -> None:
    stale = stored(store, "n0")
    with store.transaction() as tx:
        tx.put_node(stale.evolve(jobs_running=5))
    seen: list[int] = []

    def change(n: Node) -> Node:
        seen.append(n.jobs_running)
        return n.evolve(power_watts=700.0)

    out = store.update_node("n0", change, record=lambda tx, n: tx.add_results([result(n.name)]))
    assert seen == [5]
    assert (out.jobs_running, out.power_watts, out.version) == (5, 700.0, 2)
    assert stored(store, "n0") == out
    assert len(store.results("n0")) == 1
    assert store.update_node("n0", lambda n: None) == out  # nothing to write
    with pytest.raises(NotFoundError):
        store.update_node("nope", lambda n: n)


def test_update_node_retries_a_write_someone_else_won(store: Store) -> None:
    """A write between the read and the write (PostgreSQL without the row lock, another
    process on SQLite) fails it: the change is done again on what is stored then."""
    calls: list[int] = []

    def change(n: Node) -> Node:
        calls.append(n.version)
        if len(calls) == 1:
            # What another writer does after this read: the stale copy it returns loses.
            return n.evolve(version=n.version - 1, power_watts=1.0)
        return n.evolve(power_watts=2.0)

    out = store.update_node("n0", change)
    assert calls == [0, 0] and out.power_watts == 2.0 and out.version == 1


def test_posted_results_are_never_lost_to_concurrent_writers(store: Store) -> None:
    ingest = Ingest(store, FuncClock(lambda: T0), PolicyConfig())
    errors: list[BaseException] = []

    def post(check: str) -> None:
        try:
            for _ in range(10):
                ingest.ingest("n0", [result("n0", check, "warn")])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    n = stored(store, "n0")
    assert n.version == 40
    assert n.health.unwell == frozenset({"c0", "c1", "c2", "c3"})


def test_a_fatal_result_asks_for_attention_and_notifies(store: Store) -> None:
    told: list[str] = []
    ingest = Ingest(store, FuncClock(lambda: T0), PolicyConfig(), notify=told.append)
    ingest.ingest("n1", [result("n1", "gpu_count", "pass")])
    assert stored(store, "n1").attention_at is None and told == []
    ingest.ingest("n1", [result("n1", "xid", fatal=True)])
    assert stored(store, "n1").attention_at == T0 and told == ["n1"]


def test_the_sweep_redoes_what_it_learnt_on_a_node_written_meanwhile(store: Store) -> None:
    read = {n.name: n for n in store.nodes()}
    # While the sweep talks to the workload managers, a fatal result is posted for n1.
    Ingest(store, FuncClock(lambda: T0), PolicyConfig()).ingest(
        "n1", [result("n1", "xid", fatal=True)]
    )
    learnt = {name: n.evolve(jobs_running=2) for name, n in read.items()}
    stored_results = store_learnt(
        store,
        learnt,
        set(),
        [],
        [],
        {},
        lambda tx: None,
        lambda fresh: fresh.evolve(jobs_running=2),
    )
    assert stored_results == 0
    n1 = stored(store, "n1")
    finding = n1.health.finding
    assert finding is not None and finding.check == "xid"  # the finding is kept
    assert n1.jobs_running == 2 and n1.attention_at == T0  # and what the sweep learnt added
    assert learnt["n1"] == n1 and learnt["n0"] == stored(store, "n0")
    assert [n.version for n in store.nodes()] == [1, 2, 1]


def test_a_node_listed_again_is_written_on_the_row_it_was_read_from() -> None:
    gone = node("n9").evolve(state=Lifecycle.RETIRED, backend_state=GONE, version=4)
    listed = NodeStatus("n9", "train", "H100", 8, 0, drain=False, reason="", jobs=0)
    synced = reconcile({"n9": gone}, [listed], {}, "in_service", T0)
    assert synced.nodes["n9"].state is Lifecycle.IN_SERVICE
    assert synced.nodes["n9"].version == 4


def test_the_budget_reads_of_a_pool_what_it_counts(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_node(
            stored(store, "n0").evolve(
                state=Lifecycle.BURN_IN,
                automation_drain=True,
                health=NodeHealth(burn_in_voluntary=True),
            )
        )
        tx.put_node(stored(store, "n1").evolve(state=Lifecycle.DRAINED, automation_drain=True))
        tx.put_node(stored(store, "n2").evolve(state=Lifecycle.RETIRED))
    views = {v.name: v for v in store.budget_views("train")}
    assert set(views) == {"n0", "n1"}
    assert views["n0"].voluntary and views["n0"].state is Lifecycle.BURN_IN
    assert views["n1"].automation_drain and not views["n1"].voluntary
    assert store.budget_views("other") == []


def test_the_sweep_stores_in_chunks_and_a_bad_node_costs_only_its_own(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("compute.services.sweep_store.CHUNK", 2)
    with store.transaction() as tx:
        tx.add_nodes([node(f"n{i}") for i in range(3, 7)])
    read = {n.name: n for n in store.nodes()}
    # Written meanwhile, in the third chunk: redone on what is stored, its event dropped.
    Ingest(store, FuncClock(lambda: T0), PolicyConfig()).ingest(
        "n5", [result("n5", "xid", fatal=True)]
    )
    learnt = {name: n.evolve(jobs_running=1) for name, n in read.items()}
    # A reason no store takes (a lone surrogate): its chunk goes node by node.
    learnt["n2"] = learnt["n2"].evolve(drain_reason="bad\udcff")
    learnt["n7"] = node("n7")
    results = [result(name, "ecc", "pass") for name in sorted(learnt)]
    events = [Event(at=T0, node=name, kind=EventKind.DRAIN, reason="seen") for name in ("n1", "n5")]
    skipped: dict[str, str] = {}
    count = store_learnt(
        store,
        learnt,
        {"n7"},
        results,
        events,
        skipped,
        lambda tx: None,
        lambda fresh: fresh.evolve(jobs_running=1),
    )
    assert count == 8 and skipped == {}
    # Only the bad node's chunk was stored node by node.
    fallbacks = [r.getMessage() for r in caplog.records if "one by one" in r.getMessage()]
    assert len(fallbacks) == 1 and "surrogates not allowed" in fallbacks[0]
    assert {n.name: n.jobs_running for n in store.nodes()} == {
        **{f"n{i}": 1 for i in range(7)},
        "n7": 0,
    }
    assert (
        stored(store, "n2").drain_reason.startswith("bad")
        and "\udcff" not in stored(store, "n2").drain_reason
    )
    assert stored(store, "n5").attention_at == T0 and learnt["n5"] == stored(store, "n5")
    assert [e.node for e in store.events(limit=10) if e.reason == "seen"] == ["n1"]
    assert len(store.latest_results("n6")) == 1
