"""The API's hot paths on the store: a node's report folded in, a node read, a node's detail.

Each runs hundreds of times a second under load. Through the repository's ORM sessions,
building each statement anew, a report cost ~4 ms of SQLAlchemy alone and a node's detail
four sessions (benchmarks/api_load_bench.py): here the statements are built once, and one
Core connection carries each request's statements (a detail's four reads in one snapshot).
What a row means stays compute/store/rows.py's; what a write must hold, the repository's
(a node's write is conditional on the version it was read at, retried on a fresh read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Integer, bindparam, func, insert, select, update

from compute.domain import Event, Gpu, Node
from compute.errors import NotFoundError, StaleWrite
from compute.store.engine import WRITES
from compute.store.models import CheckResultRow, EventRow, GpuRow, NodeRow
from compute.store.repository import Store
from compute.store.rows import (
    event_from_row,
    node_from_row,
    node_values,
    result_from_row,
    result_values,
    table_of,
)
from health.result import CheckResult

# Whatever a node's write rests on was read in its transaction; a write can only fail as
# stale where another process's writer slipped in (SQLite) or a row lock was not taken.
ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class NodeRead:
    """A node with what `GET /nodes/{name}` shows of it, read in one snapshot."""

    node: Node
    gpus: list[Gpu]
    results: list[CheckResult]
    events: list[Event]


class HotPaths:
    """Prebuilt statements over one store (build one per store, share it across threads)."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._writer = store.engine.execution_options(**{WRITES: True})
        n = table_of(NodeRow)
        self._node = select(n).where(n.c.name == bindparam("name"))
        self._node_locked = self._node.with_for_update()
        # The columns to set come with the parameters (rows.node_values' keys).
        self._put = update(n).where(
            n.c.name == bindparam("b_name"), n.c.version == bindparam("b_v")
        )
        r = table_of(CheckResultRow)
        self._add_results = insert(r)
        newest = (
            select(r.c.check, func.max(r.c.id).label("id"))
            .where(r.c.node == bindparam("name"))
            .group_by(r.c.check)
            .subquery()
        )
        self._latest = select(r).join(newest, r.c.id == newest.c.id).order_by(r.c.suite, r.c.check)
        g = table_of(GpuRow)
        # Columns named, not the table: a row's ``index`` is the tuple's method.
        self._gpus = (
            select(g.c.node, g.c.index, g.c.uuid, g.c.model, g.c.serial)
            .where(g.c.node == bindparam("name"))
            .order_by(g.c.index)
        )
        e = table_of(EventRow)
        self._events = (
            select(e)
            .where(e.c.node == bindparam("name"))
            .order_by(e.c.id.desc())
            .limit(bindparam("limit", type_=Integer))
        )

    # -- reads ---------------------------------------------------------------------------

    def node(self, name: str) -> Node | None:
        with self._engine.connect() as conn:
            row = conn.execute(self._node, {"name": name}).first()
        return None if row is None else node_from_row(row)

    def detail(self, name: str, events: int) -> NodeRead:
        """The node, its GPUs, the newest result of each check and its latest ``events``."""
        with self._engine.connect() as conn, conn.begin():
            row = conn.execute(self._node, {"name": name}).first()
            if row is None:
                raise NotFoundError(f"unknown node {name!r}")
            at = {"name": name}
            gpus = [
                Gpu(node=node, index=index, uuid=uuid, model=model, serial=serial)
                for node, index, uuid, model, serial in conn.execute(self._gpus, at)
            ]
            # rows.py's readers take ORM rows; a Core row has the same attributes.
            results = [result_from_row(cast(Any, r)) for r in conn.execute(self._latest, at)]
            recent = conn.execute(self._events, {"name": name, "limit": events})
            return NodeRead(
                node_from_row(row), gpus, results, [event_from_row(cast(Any, r)) for r in recent]
            )

    # -- writes --------------------------------------------------------------------------

    def fold_in(
        self, name: str, change: Callable[[Node], Node], results: Sequence[CheckResult]
    ) -> Node:
        """Store ``results`` and the node as ``change`` makes it from the node as stored now
        (its row locked on PostgreSQL; on SQLite the write transaction holds the store), in
        one transaction; ``change`` may raise to write nothing. Returns the node as stored."""
        stale = StaleWrite(f"{name}: no write after {ATTEMPTS} attempts")
        for _ in range(ATTEMPTS):
            with self._writer.begin() as conn:
                row = conn.execute(self._node_locked, {"name": name}).first()
                if row is None:
                    raise NotFoundError(f"unknown node {name!r}")
                new = change(node_from_row(row))
                try:
                    stored = self._put_node(conn, new)
                except StaleWrite as exc:
                    stale = exc
                    continue
                if results:
                    conn.execute(self._add_results, [result_values(r) for r in results])
                return stored
        raise stale

    def _put_node(self, conn: Connection, node: Node) -> Node:
        values = node_values(node)
        values["b_name"] = values.pop("name")
        values["b_v"] = node.version
        values["version"] = node.version + 1
        if conn.execute(self._put, values).rowcount != 1:
            raise StaleWrite(f"{node.name} was changed by another writer; nothing was written")
        return node.evolve(version=node.version + 1)
