"""Tenants' drift as the last check saw it (compute/services/drift.py), kept in the store.

Per tenant, backend and object, what differs from the spec and since when; per backend, the
last check tried and the last one that could read it. Kept here, not in a process, so the
metric survives a restart and every replica behind a load balancer exports the same.

An object starts or stops drifting once, whoever records it: a row is inserted only where
there is none (an insert that does nothing when it is there already) and deleted only where
it is, and the event goes with the write that did it, in its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from compute.domain import Event
from compute.store.models import TenantDriftCheckRow, TenantDriftRow
from compute.store.repository import Store, Tx

# The columns' widths (compute/store/models.py): longer text is cut, never refused.
OBJECT_CHARS = 512
BACKEND_CHARS = 160


@dataclass(frozen=True, slots=True)
class Drift:
    """One object of a tenant in a backend that differs from the spec: ``change`` is what
    an apply would do to it (create, update, delete), ``live`` and ``spec`` the two sides
    in one line each ("" where the object is absent or should be)."""

    tenant: str
    backend: str
    object: str
    change: str
    live: str = ""
    spec: str = ""
    since: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tenant, self.backend, self.object)


@dataclass(frozen=True, slots=True)
class Check:
    backend: str
    tried_at: datetime
    checked_at: datetime | None
    error: str


@dataclass
class Recorded:
    started: list[Drift] = field(default_factory=list)
    cleared: list[Drift] = field(default_factory=list)


# Event for an object that started (True) or stopped (False) drifting.
Announce = Callable[[Drift, bool], Event]


def _dialect(conn: Connection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def _drift(r: TenantDriftRow) -> Drift:
    return Drift(r.tenant, r.backend, r.object, r.change, r.live, r.spec, r.since)


def drifts(store: Store) -> list[Drift]:
    """Every drifting object, by tenant, backend and object."""
    q = select(TenantDriftRow).order_by(
        TenantDriftRow.tenant, TenantDriftRow.backend, TenantDriftRow.object
    )
    with Session(store.engine) as s:
        return [_drift(r) for r in s.scalars(q)]


def checks(store: Store) -> list[Check]:
    with Session(store.engine) as s:
        rows = s.scalars(select(TenantDriftCheckRow).order_by(TenantDriftCheckRow.backend))
        return [Check(r.backend, r.tried_at, r.checked_at, r.error) for r in rows]


def last_tried(store: Store) -> datetime | None:
    """When a check was last tried, by any replica (the period counts from it)."""
    with Session(store.engine) as s:
        found: datetime | None = s.scalar(select(func.max(TenantDriftCheckRow.tried_at)))
        return found


def _tried(tx: Tx, backend: str, now: datetime, error: str | None) -> None:
    """The backend's check row: tried now, and read now unless ``error``."""
    values: dict[str, Any] = {"tried_at": now, "error": error or ""}
    if error is None:
        values["checked_at"] = now
    stmt = _dialect(tx.s.connection()).insert(TenantDriftCheckRow).values(backend=backend, **values)
    tx.s.execute(stmt.on_conflict_do_update(index_elements=["backend"], set_=values))


def failed(store: Store, backend: str, now: datetime, error: str) -> None:
    """A check of ``backend`` that could not read it: its drift stays as last seen."""
    with store.transaction() as tx:
        _tried(tx, backend, now, error[:4000])


def _insert(tx: Tx, d: Drift, now: datetime) -> bool:
    stmt = (
        _dialect(tx.s.connection())
        .insert(TenantDriftRow)
        .values(
            tenant=d.tenant,
            backend=d.backend,
            object=d.object,
            change=d.change,
            live=d.live,
            spec=d.spec,
            since=now,
            seen_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant", "backend", "object"])
        .returning(TenantDriftRow.tenant)
    )
    return tx.s.execute(stmt).first() is not None


def _where(key: tuple[str, str, str]) -> Any:
    t, b, o = key
    return and_(TenantDriftRow.tenant == t, TenantDriftRow.backend == b, TenantDriftRow.object == o)


def _remove(tx: Tx, key: tuple[str, str, str]) -> bool:
    stmt = delete(TenantDriftRow).where(_where(key)).returning(TenantDriftRow.tenant)
    return tx.s.execute(stmt).first() is not None


def record(
    store: Store,
    backend: str,
    found: Sequence[Drift],
    checked: Collection[str],
    known: Collection[str],
    now: datetime,
    announce: Announce,
) -> Recorded:
    """What one check of ``backend`` read: ``found`` drifts, among the tenants it could
    plan (``checked``); their other objects no longer drift. A row of a tenant no longer
    recorded (``known``) goes without an event. One transaction, with the events."""
    out = Recorded()
    with store.transaction() as tx:
        # Rows written in key order, by every replica: two at once never wait on each other
        # in a cycle (PostgreSQL).
        q = select(TenantDriftRow).where(TenantDriftRow.backend == backend)
        rows = tx.s.scalars(q.order_by(TenantDriftRow.tenant, TenantDriftRow.object))
        before = {(r.tenant, r.backend, r.object): _drift(r) for r in rows}
        for d in sorted(found, key=lambda d: d.key):
            if d.key in before:
                tx.s.execute(
                    update(TenantDriftRow)
                    .where(_where(d.key))
                    .values(change=d.change, live=d.live, spec=d.spec, seen_at=now)
                )
            elif _insert(tx, d, now):
                out.started.append(Drift(*d.key, d.change, d.live, d.spec, now))
        seen = {d.key for d in found}
        for key, d in before.items():
            if key in seen or (d.tenant in known and d.tenant not in checked):
                continue
            if _remove(tx, key) and d.tenant in known:
                out.cleared.append(d)
        _tried(tx, backend, now, None)
        tx.add_events([announce(d, True) for d in out.started])
        tx.add_events([announce(d, False) for d in out.cleared])
    return out


def forget(store: Store, tenant: str, record: Callable[[Tx, list[Drift]], None]) -> list[Drift]:
    """The tenant's drift gone (a repair applied its spec); ``record(tx, gone)`` with it."""
    with store.transaction() as tx:
        stmt = (
            delete(TenantDriftRow).where(TenantDriftRow.tenant == tenant).returning(TenantDriftRow)
        )
        gone = [_drift(r) for r in tx.s.scalars(stmt)]
        record(tx, gone)
    return gone
