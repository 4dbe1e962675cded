"""The API's hot paths read and write what the repository does, and SQLite writers queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compute.domain import Event, Gpu, Node
from compute.errors import InvalidInput, NotFoundError
from compute.store import Store
from compute.store.engine import QueuedWrites
from compute.store.hot import HotPaths
from compute.testing import result
from health.policy import Lifecycle

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
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with s.transaction() as tx:
        tx.add_nodes([node("n0"), node("n1")])
        tx.add_gpus([Gpu("n0", i, f"GPU-{i}", "H100", f"S{i}") for i in (1, 0)])
        tx.add_results(
            [
                result("n0", "xid", "pass", at=T0),
                result("n0", "xid", "fail", at=T0 + timedelta(minutes=1)),
                result("n0", "ecc", "warn", at=T0),
                result("n1", "ecc", "pass", at=T0),
            ]
        )
        for i in range(3):
            tx.add_event(Event(at=T0, node="n0", kind="drain", reason=f"r{i}", pool="train"))
        tx.add_event(Event(at=T0, node="n1", kind="drain", reason="other", pool="train"))
    yield s
    s.close()


def test_a_detail_is_what_the_repository_reads(store: Store) -> None:
    read = HotPaths(store).detail("n0", events=2)
    assert read.node == store.node("n0")
    assert read.gpus == store.gpus("n0") and [g.index for g in read.gpus] == [0, 1]
    assert read.results == store.latest_results("n0")
    assert [(r.check, r.status.value) for r in read.results] == [("ecc", "warn"), ("xid", "fail")]
    assert read.events == store.events(node="n0", limit=2)
    assert [e.reason for e in read.events] == ["r2", "r1"]
    assert HotPaths(store).node("n1") == store.node("n1")


def test_an_unknown_node(store: Store) -> None:
    hot = HotPaths(store)
    assert hot.node("nope") is None
    with pytest.raises(NotFoundError):
        hot.detail("nope", 5)
    with pytest.raises(NotFoundError):
        hot.fold_in("nope", lambda n: n, [result("nope", "xid")])


def test_a_fold_stores_the_node_and_its_results_together(store: Store) -> None:
    hot = HotPaths(store)
    posted = [result("n1", "pcie", "fail", at=T0 + timedelta(hours=1))]
    out = hot.fold_in("n1", lambda n: n.evolve(jobs_running=n.jobs_running + 2), posted)
    assert out == store.node("n1") and out.version == 1 and out.jobs_running == 2
    assert store.results("n1", check="pcie") == posted

    def refuse(_n: Node) -> Node:
        raise InvalidInput("no")

    with pytest.raises(InvalidInput):
        hot.fold_in("n1", refuse, [result("n1", "nvlink")])
    assert store.results("n1", check="nvlink") == [] and store.node("n1") == out


def test_writers_of_one_process_queue_and_each_release_the_lock(store: Store) -> None:
    hot = HotPaths(store)
    errors: list[BaseException] = []

    def post(i: int) -> None:
        try:
            for _ in range(15):
                hot.fold_in("n0", lambda n: n.evolve(jobs_running=n.jobs_running + 1), [])
                with store.transaction() as tx:
                    tx.add_results([result("n1", f"c{i}")])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert hot.node("n0") == store.node("n0") and hot.node("n0").jobs_running == 60  # type: ignore[union-attr]

    # A write that failed half-way released the lock too: the next one goes through.
    def abandoned() -> None:
        with store.transaction() as tx:
            tx.add_results([result("n1", "late")])
            raise RuntimeError("abandoned")

    with pytest.raises(RuntimeError):
        abandoned()
    with store.transaction() as tx:
        tx.add_results([result("n1", "later")])
    assert store.results("n1", check="late") == [] and len(store.results("n1", check="later")) == 1
    raw = store.engine.raw_connection()
    try:
        assert isinstance(raw.dbapi_connection, QueuedWrites)
        assert not raw.dbapi_connection.writers.locked()
    finally:
        raw.close()
