"""Reads the API serves many times a second, in Core on one connection: the ORM session
and a statement built anew each time cost more than these reads themselves (events: 2.1 ->
~0.7 ms of CPU at 50 rows). What a row means stays compute/store/rows.py's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import select

from compute.domain import Event
from compute.store.models import EventRow, NodeRow
from compute.store.repository import Store
from compute.store.rows import event_from_row, table_of


def events(
    store: Store, node: str | None, kinds: Sequence[str] | None, limit: int
) -> list[Event] | None:
    """Events, newest first (of ``node``, of ``kinds``, at most ``limit``); None when
    ``node`` is not a node (read in the same snapshot)."""
    e = table_of(EventRow)
    q = select(e)
    if node is not None:
        q = q.where(e.c.node == node)
    if kinds:
        q = q.where(e.c.kind.in_(list(kinds)))
    q = q.order_by(e.c.id.desc()).limit(limit)
    with store.engine.connect() as conn, conn.begin():
        if node is not None:
            n = table_of(NodeRow)
            if conn.execute(select(n.c.name).where(n.c.name == node)).first() is None:
                return None
        # rows.py's readers take ORM rows; a Core row has the same attributes.
        return [event_from_row(cast(Any, r)) for r in conn.execute(q)]
