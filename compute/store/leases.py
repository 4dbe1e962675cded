"""Leases in the store: who may act on the fleet, and until when.

Each write is one conditional statement, so two processes racing for a lease cannot both
win: ``acquire`` takes the row when it is absent, expired or already ours (a new holder bumps
``epoch``), ``renew`` and ``release`` touch it only while holder and epoch are still ours.

``take_over`` takes it from a holder known to be dead (SQLite: a process of this host that no
longer exists), so that a restart after a crash need not wait out the ttl.

The time written and compared is the store's own, so that every replica measures expiry
on one clock: PostgreSQL's ``now()`` (the statement's transaction start); on SQLite, which
only processes on one host share, the local wall clock. Never the control plane's clock:
the simulation's runs faster than real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import import_module
from types import ModuleType
from typing import Any

from sqlalchemy import Interval, case, func, literal, select, update
from sqlalchemy.engine import Engine

from compute.store.models import LeaseRow, UtcDateTime

__all__ = ["Lease", "acquire", "current", "release", "renew", "take_over"]


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    epoch: int
    acquired_at: datetime
    expires_at: datetime
    # The store's time when the statement ran: expiry is measured against it, not ours.
    now: datetime

    @property
    def remaining_seconds(self) -> float:
        return (self.expires_at - self.now).total_seconds()


def _at(engine: Engine, seconds: float = 0.0) -> Any:
    """The store's 'now' plus ``seconds``, as the naive UTC the store keeps times in."""
    if engine.dialect.name == "postgresql":
        later = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds, type_=Interval)
        return func.timezone("UTC", later, type_=UtcDateTime)
    return literal(datetime.now(UTC) + timedelta(seconds=seconds), UtcDateTime)


_RETURNED = (
    LeaseRow.name,
    LeaseRow.holder,
    LeaseRow.epoch,
    LeaseRow.acquired_at,
    LeaseRow.expires_at,
)


def _lease(row: Any, now: datetime) -> Lease:
    return Lease(row.name, row.holder, row.epoch, row.acquired_at, row.expires_at, now)


def _store_now(engine: Engine, conn: Any) -> datetime:
    if engine.dialect.name == "postgresql":
        value: datetime = conn.execute(select(_at(engine))).scalar_one()
        return value
    return datetime.now(UTC)


def acquire(engine: Engine, name: str, holder: str, ttl: float) -> Lease | None:
    """Take the lease for ``ttl`` seconds if it is absent, expired or ours; None when another
    holder's lease is still running."""
    # The store's own dialect (its INSERT ... ON CONFLICT), imported by name: PostgreSQL's
    # costs every SQLite process (the CLI, a cron sweep) a fifth of a second at start.
    dialect: ModuleType = import_module(f"sqlalchemy.dialects.{engine.dialect.name}")
    now = _at(engine)
    stmt = dialect.insert(LeaseRow).values(
        name=name,
        holder=holder,
        epoch=1,
        acquired_at=now,
        renewed_at=now,
        expires_at=_at(engine, ttl),
    )
    table = LeaseRow.__table__.c
    same = table.holder == stmt.excluded.holder
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.name],
        set_={
            "holder": stmt.excluded.holder,
            "epoch": case((same, table.epoch), else_=table.epoch + 1),
            "acquired_at": case((same, table.acquired_at), else_=stmt.excluded.acquired_at),
            "renewed_at": stmt.excluded.renewed_at,
            "expires_at": stmt.excluded.expires_at,
        },
        where=same | (table.expires_at <= stmt.excluded.renewed_at),
    ).returning(*_RETURNED, LeaseRow.renewed_at)
    with engine.begin() as conn:
        row = conn.execute(stmt).one_or_none()
    return None if row is None else _lease(row, row.renewed_at)


def renew(engine: Engine, name: str, holder: str, epoch: int, ttl: float) -> Lease | None:
    """Extend our lease by ``ttl`` from now; None when it is no longer ours (taken over)."""
    stmt = (
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.epoch == epoch)
        .values(renewed_at=_at(engine), expires_at=_at(engine, ttl))
        .returning(*_RETURNED, LeaseRow.renewed_at)
    )
    with engine.begin() as conn:
        row = conn.execute(stmt).one_or_none()
    return None if row is None else _lease(row, row.renewed_at)


def take_over(engine: Engine, name: str, holder: str, previous: str, ttl: float) -> Lease | None:
    """Take the lease from ``previous``, a holder known to be dead, however long its lease
    still runs; None when it is no longer that holder's."""
    stmt = (
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == previous)
        .values(
            holder=holder,
            epoch=LeaseRow.epoch + 1,
            acquired_at=_at(engine),
            renewed_at=_at(engine),
            expires_at=_at(engine, ttl),
        )
        .returning(*_RETURNED, LeaseRow.renewed_at)
    )
    with engine.begin() as conn:
        row = conn.execute(stmt).one_or_none()
    return None if row is None else _lease(row, row.renewed_at)


def release(engine: Engine, name: str, holder: str, epoch: int) -> bool:
    """End our lease now, so the next holder need not wait for it to expire."""
    stmt = (
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.epoch == epoch)
        .values(expires_at=_at(engine))
    )
    with engine.begin() as conn:
        return bool(conn.execute(stmt).rowcount)


def current(engine: Engine, name: str) -> Lease | None:
    """The lease as stored (expired or not), with the store's time to compare it with."""
    with engine.connect() as conn:
        row = conn.execute(select(*_RETURNED).where(LeaseRow.name == name)).one_or_none()
        now = _store_now(engine, conn)
    return None if row is None else _lease(row, now)
