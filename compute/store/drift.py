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

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from compute.domain import Event
from compute.store.models import TenantDriftCheckRow, TenantDriftRow
from compute.store.repository import Store, Tx
from compute.store.rows import table_of
from compute.store.upsert import upsert

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
    stmt = upsert(tx.s.connection(), TenantDriftCheckRow).values(backend=backend, **values)
    tx.s.execute(stmt.on_conflict_do_update(index_elements=["backend"], set_=values))


def failed(store: Store, backend: str, now: datetime, error: str) -> None:
    """A check of ``backend`` that could not read it: its drift stays as last seen."""
    with store.transaction() as tx:
        _tried(tx, backend, now, error[:4000])


# Rows a statement inserts at most: 8 values each, far below SQLite's variable limit.
_CHUNK = 200
_T = table_of(TenantDriftRow)


def _inserted(tx: Tx, new: Sequence[Drift], now: datetime) -> set[tuple[str, str]]:
    """Insert the rows none has yet; the (tenant, object) of those this one inserted."""
    done: set[tuple[str, str]] = set()
    for i in range(0, len(new), _CHUNK):
        values = [
            {
                "tenant": d.tenant,
                "backend": d.backend,
                "object": d.object,
                "change": d.change,
                "live": d.live,
                "spec": d.spec,
                "since": now,
                "changed_at": now,
            }
            for d in new[i : i + _CHUNK]
        ]
        stmt = (
            upsert(tx.s.connection(), _T)
            .values(values)
            .on_conflict_do_nothing(index_elements=["tenant", "backend", "object"])
            .returning(_T.c.tenant, _T.c.object)
        )
        done |= {(r.tenant, r.object) for r in tx.s.execute(stmt)}
    return done


def _where(key: tuple[str, str, str]) -> Any:
    t, b, o = key
    return and_(_T.c.tenant == t, _T.c.backend == b, _T.c.object == o)


def _remove(tx: Tx, key: tuple[str, str, str]) -> bool:
    return tx.s.execute(delete(_T).where(_where(key)).returning(_T.c.tenant)).first() is not None


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
    # Rows written in key order, by every replica: two at once never wait on each other in
    # a cycle (PostgreSQL).
    fresh = sorted({d.key: d for d in found}.values(), key=lambda d: d.key)
    with store.transaction() as tx:
        q = select(_T).where(_T.c.backend == backend).order_by(_T.c.tenant, _T.c.object)
        before = {
            (r.tenant, r.backend, r.object): Drift(
                r.tenant, r.backend, r.object, r.change, r.live, r.spec, r.since
            )
            for r in tx.s.execute(q)
        }
        for d in fresh:
            was = before.get(d.key)
            if was is not None and (was.change, was.live, was.spec) != (d.change, d.live, d.spec):
                tx.s.execute(
                    update(_T)
                    .where(_where(d.key))
                    .values(change=d.change, live=d.live, spec=d.spec, changed_at=now)
                )
        new = [d for d in fresh if d.key not in before]
        inserted = _inserted(tx, new, now)
        out.started = [
            Drift(*d.key, d.change, d.live, d.spec, now)
            for d in new
            if (d.tenant, d.object) in inserted
        ]
        seen = {d.key for d in fresh}
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
