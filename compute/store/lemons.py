"""The reads the lemon check needs (compute/services/lemons.py): narrow, from the events table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from compute.domain import Event
from compute.store.models import EventRow
from compute.store.repository import Store
from compute.store.rows import event_from_row


def busy_nodes(store: Store, kinds: Sequence[str], since: datetime, at_least: int) -> list[str]:
    """Nodes with at least ``at_least`` events of ``kinds`` since ``since``: one grouped scan
    of the window, so the per-node history is read only for the few that could qualify."""
    q = (
        select(EventRow.node)
        .where(EventRow.kind.in_(list(kinds)), EventRow.at >= since)
        .group_by(EventRow.node)
        .having(func.count() >= at_least)
        .order_by(EventRow.node)
    )
    with Session(store.engine) as s:
        return [str(n) for n in s.scalars(q)]


def history(store: Store, node: str, kinds: Sequence[str]) -> list[Event]:
    """Every event of ``kinds`` the node has, oldest first (its whole history: a lemon is
    judged on repairs that may predate any window)."""
    q = (
        select(EventRow)
        .where(EventRow.node == node, EventRow.kind.in_(list(kinds)))
        .order_by(EventRow.id)
    )
    with Session(store.engine) as s:
        return [event_from_row(r) for r in s.scalars(q)]


def marked(store: Store, kinds: Sequence[str]) -> dict[str, Event]:
    """The newest event of ``kinds`` per node (lemon marks and their clears: rare, read
    whole)."""
    q = select(EventRow).where(EventRow.kind.in_(list(kinds))).order_by(EventRow.id)
    with Session(store.engine) as s:
        return {r.node: event_from_row(r) for r in s.scalars(q)}


def newest(session: Session, node: str, kinds: Sequence[str]) -> Event | None:
    """The node's newest event of ``kinds``, read in ``session`` (a writer's, so that what
    is written next is judged on what it read)."""
    q = (
        select(EventRow)
        .where(EventRow.node == node, EventRow.kind.in_(list(kinds)))
        .order_by(EventRow.id.desc())
        .limit(1)
    )
    row = session.scalars(q).first()
    return None if row is None else event_from_row(row)
