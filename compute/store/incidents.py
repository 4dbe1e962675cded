"""What the gate keeps (compute/services/gate.py): pools' modes, incidents of the brake for
shared causes, and the reads it decides from. Reads open their own session; writes take the
caller's transaction, so a decision and its record commit together."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.orm import Session

from compute.domain import AUTOMATION, Event, EventKind, Pool
from compute.store.models import EventRow, IncidentRow, NodeRow, PoolRow
from compute.store.repository import Store
from compute.store.rows import event_from_row, table_of
from compute.store.tx import Tx
from health.policy import Lifecycle

OPEN, RELEASED = "open", "released"


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    scope_kind: str  # "rack" | "switch" | "pool"
    scope: str
    pool: str
    opened_at: datetime
    cause: str
    summary: str
    evidence: dict[str, Any]
    nodes: tuple[str, ...]
    state: str
    held: int
    released_at: datetime | None
    released_by: str


@dataclass(frozen=True, slots=True)
class DrainSeen:
    """An automated fault drain that happened, with where its node sits."""

    node: str
    at: datetime
    check: str
    pool: str
    rack: str
    switch: str


@contextmanager
def _read(store: Store) -> Iterator[Session]:
    with Session(store.engine) as session:
        yield session


def _incident(r: IncidentRow | Row[Any]) -> Incident:
    return Incident(
        id=r.id,
        scope_kind=r.scope_kind,
        scope=r.scope,
        pool=r.pool,
        opened_at=r.opened_at,
        cause=r.cause,
        summary=r.summary,
        evidence=dict(r.evidence),
        nodes=tuple(r.nodes or ()),
        state=r.state,
        held=r.held,
        released_at=r.released_at,
        released_by=r.released_by,
    )


# -- pools ------------------------------------------------------------------------------------


def record_pool(tx: Tx, pool: Pool) -> bool:
    """Insert ``pool`` with its mode, or update what its settings say of a recorded one
    (backend, GPU model) and never its mode. True if it was new."""
    row = tx.s.get(PoolRow, pool.name)
    if row is None:
        tx.s.add(
            PoolRow(
                name=pool.name,
                backend=pool.backend,
                gpu_model=pool.gpu_model,
                mode=pool.mode,
                observe_checks=list(pool.observe_checks),
                mode_changed_at=pool.mode_changed_at,
                mode_actor=pool.mode_actor,
            )
        )
        return True
    row.backend, row.gpu_model = pool.backend, pool.gpu_model
    return False


def set_pool_mode(tx: Tx, pool: Pool) -> None:
    tx.s.execute(
        update(PoolRow)
        .where(PoolRow.name == pool.name)
        .values(
            mode=pool.mode,
            observe_checks=list(pool.observe_checks),
            mode_changed_at=pool.mode_changed_at,
            mode_actor=pool.mode_actor,
        )
    )


def pool(store: Store, name: str) -> Pool | None:
    # Pools are few: the repository's one mapping of their rows serves.
    return next((p for p in store.pools() if p.name == name), None)


# -- nodes' gate memory -------------------------------------------------------------------------


def clear_would(tx: Tx, pool: str) -> int:
    """Forget the gate's decisions on a pool's nodes (its mode changed: they are news again)."""
    res = tx.s.execute(
        update(NodeRow)
        .where(NodeRow.pool == pool, NodeRow.would != "")
        .values(would="", version=NodeRow.version + 1)
    )
    return int(getattr(res, "rowcount", 0) or 0)


def gate_events(store: Store, kinds: Sequence[str], pool: str, since: datetime) -> list[Event]:
    """A pool's events of these kinds since ``since``, oldest first."""
    q = (
        select(EventRow)
        .where(EventRow.kind.in_(list(kinds)), EventRow.pool == pool, EventRow.at >= since)
        .order_by(EventRow.id)
    )
    with _read(store) as s:
        return [event_from_row(r) for r in s.scalars(q)]


def recent_drains(store: Store, since: datetime) -> list[DrainSeen]:
    """Automated fault drains since ``since`` (a retried drain names no check: not counted)."""
    return DrainLog(store).since(since)


class DrainLog:
    """``recent_drains`` for one reader that asks again and again (the brake, once per drain
    it judges): the window's drain events are read whole once, then only the events written
    after the last one read. That is exact where ids are given in commit order (SQLite: one
    writer at a time); on PostgreSQL a transaction may commit an id below one already read,
    so there each read is whole. Where each node sits (rack, switch) is read afresh each time,
    as the whole read joins it. A whole read scans the events of the window (every event of a
    sweep that resumed thousands of nodes), a tenth of a second per drain at 10,240 nodes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._incremental = store.engine.dialect.name == "sqlite"
        # The drains read, by event id: (node, at, check, pool); the newest event id then.
        self._seen: dict[int, tuple[str, datetime, str, str]] = {}
        self._last: int | None = None
        self._from: datetime | None = None

    def since(self, since: datetime) -> list[DrainSeen]:
        e = table_of(EventRow)
        q = select(e.c.id, e.c.node, e.c.at, e.c.detail, e.c.pool).where(
            e.c.kind == EventKind.DRAIN, e.c.actor == AUTOMATION
        )
        if not self._incremental or self._last is None or self._from is None or since < self._from:
            self._seen, self._from = {}, since
            q = q.where(e.c.at >= since)
        else:
            q = q.where(e.c.id > self._last)
        # One read transaction (a snapshot): the newest id and the events up to it.
        with self.store.engine.connect() as conn:
            last = conn.execute(select(func.max(e.c.id))).scalar()
            for id_, node, at, detail, pool in conn.execute(q.order_by(e.c.id)):
                check = (detail or {}).get("check")
                if check:
                    self._seen[id_] = (node, at, str(check), pool)
            self._seen = {i: d for i, d in self._seen.items() if d[1] >= since}
            self._last, self._from = last or 0, since
            where = _where_nodes(conn, {d[0] for d in self._seen.values()})
        return [
            DrainSeen(node, at, check, pool, *where[node])
            for _, (node, at, check, pool) in sorted(self._seen.items())
            if node in where
        ]


def _where_nodes(conn: Connection, names: set[str]) -> dict[str, tuple[str, str]]:
    """Each stored node's (rack, switch), of ``names``."""
    n = table_of(NodeRow)
    out: dict[str, tuple[str, str]] = {}
    ordered = sorted(names)
    for i in range(0, len(ordered), 500):
        q = select(n.c.name, n.c.rack, n.c.switch).where(n.c.name.in_(ordered[i : i + 500]))
        out.update({name: (rack, switch) for name, rack, switch in conn.execute(q)})
    return out


def scope_size(store: Store, kind: str, scope: str) -> int:
    """Nodes in service or out of it (not retired) under one rack, switch or pool."""
    column = {"rack": NodeRow.rack, "switch": NodeRow.switch, "pool": NodeRow.pool}[kind]
    q = (
        select(func.count())
        .select_from(NodeRow)
        .where(column == scope, NodeRow.state != Lifecycle.RETIRED.value)
    )
    with _read(store) as s:
        return int(s.scalar(q) or 0)


# -- incidents --------------------------------------------------------------------------------


def incidents(store: Store, state: str | None = None, limit: int = 100) -> list[Incident]:
    q = select(IncidentRow)
    if state is not None:
        q = q.where(IncidentRow.state == state)
    with _read(store) as s:
        return [_incident(r) for r in s.scalars(q.order_by(IncidentRow.id.desc()).limit(limit))]


def incident(store: Store, id_: int) -> Incident | None:
    with _read(store) as s:
        r = s.get(IncidentRow, id_)
        return None if r is None else _incident(r)


def scope_incidents(
    store: Store, scopes: Sequence[tuple[str, str]], released_since: datetime
) -> list[Incident]:
    """Incidents of any of these (kind, scope) pairs that are open or were released since
    ``released_since``, newest first."""
    if not scopes:
        return []
    # Core rows, not the ORM's objects: the brake asks once per drain it judges.
    t = table_of(IncidentRow)
    q = select(t).where(
        t.c.scope_kind.in_({k for k, _ in scopes}),
        t.c.scope.in_({s for _, s in scopes}),
        (t.c.state == OPEN) | (t.c.released_at >= released_since),
    )
    wanted = set(scopes)
    with store.engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.id.desc()))
        return [_incident(r) for r in rows if (r.scope_kind, r.scope) in wanted]


def open_incident(tx: Tx, draft: Incident) -> int | None:
    """Open ``draft`` unless an incident is already open on its scope; its id, or None."""
    taken = tx.s.scalar(
        select(IncidentRow.id).where(
            IncidentRow.scope_kind == draft.scope_kind,
            IncidentRow.scope == draft.scope,
            IncidentRow.state == OPEN,
        )
    )
    if taken is not None:
        return None
    row = IncidentRow(
        scope_kind=draft.scope_kind,
        scope=draft.scope,
        pool=draft.pool,
        opened_at=draft.opened_at,
        cause=draft.cause,
        summary=draft.summary,
        evidence=draft.evidence,
        nodes=list(draft.nodes),
        state=OPEN,
        held=draft.held,
        released_at=None,
        released_by="",
    )
    tx.s.add(row)
    tx.s.flush()
    return row.id


def hold(tx: Tx, id_: int, node: str, check: str, at: datetime) -> None:
    """One more drain held by incident ``id_``: counted, and its node named in the evidence."""
    row = tx.s.get(IncidentRow, id_)
    if row is None:
        return
    row.held += 1
    if node not in (row.nodes or []):
        row.nodes = [*(row.nodes or []), node]
    evidence = dict(row.evidence)
    evidence["held"] = [
        *evidence.get("held", []),
        {"node": node, "check": check, "at": at.isoformat()},
    ]
    row.evidence = evidence


def release(tx: Tx, id_: int, at: datetime, by: str) -> bool:
    """Release an open incident; False if it was not open."""
    res = tx.s.execute(
        update(IncidentRow)
        .where(IncidentRow.id == id_, IncidentRow.state == OPEN)
        .values(state=RELEASED, released_at=at, released_by=by)
    )
    return bool(getattr(res, "rowcount", 0))
