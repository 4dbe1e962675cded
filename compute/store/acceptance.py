"""Tranches of new capacity, kept (compute/services/acceptance.py).

Every change names the version it read and is written only if the row still has it: two
control planes (or a sweep and an operator's `acceptance run`) never both move a tranche."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from compute.store.acceptance_models import TrancheRow
from compute.store.repository import Store


@dataclass(frozen=True)
class Tranche:
    name: str
    nodes: tuple[str, ...]
    threshold: float
    state: str
    phase: str
    created_at: datetime
    created_by: str
    started_at: datetime | None = None
    judged_at: datetime | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: str = ""
    version: int = 1


def _tranche(r: TrancheRow) -> Tranche:
    return Tranche(
        name=r.name,
        nodes=tuple(json.loads(r.nodes)),
        threshold=r.threshold,
        state=r.state,
        phase=r.phase,
        created_at=r.created_at,
        created_by=r.created_by,
        started_at=r.started_at,
        judged_at=r.judged_at,
        progress=json.loads(r.progress) if r.progress else {},
        report=json.loads(r.report) if r.report else None,
        error=r.error,
        version=r.version,
    )


def create(store: Store, t: Tranche) -> bool:
    """Adds the tranche; False when one of that name exists."""
    try:
        with store.transaction() as tx:
            tx.s.execute(
                insert(TrancheRow).values(
                    name=t.name,
                    nodes=json.dumps(list(t.nodes)),
                    threshold=t.threshold,
                    state=t.state,
                    phase=t.phase,
                    created_at=t.created_at,
                    created_by=t.created_by,
                    started_at=None,
                    judged_at=None,
                    progress="{}",
                    report="",
                    error="",
                    version=1,
                )
            )
    except IntegrityError:
        return False
    return True


def get(store: Store, name: str) -> Tranche | None:
    with Session(store.engine) as s:
        row = s.get(TrancheRow, name)
        return _tranche(row) if row is not None else None


def listed(store: Store, states: tuple[str, ...] = ()) -> list[Tranche]:
    q = select(TrancheRow).order_by(TrancheRow.created_at, TrancheRow.name)
    if states:
        q = q.where(TrancheRow.state.in_(states))
    with Session(store.engine) as s:
        return [_tranche(r) for r in s.scalars(q)]


def save(store: Store, read: Tranche, new: Tranche) -> bool:
    """Writes ``new`` over the tranche if it is still as ``read`` found it; False otherwise
    (someone moved it since: the caller reads it again next time)."""
    with store.transaction() as tx:
        done: CursorResult[Any] = tx.s.execute(  # type: ignore[assignment]
            update(TrancheRow)
            .where(TrancheRow.name == read.name, TrancheRow.version == read.version)
            .values(
                state=new.state,
                phase=new.phase,
                started_at=new.started_at,
                judged_at=new.judged_at,
                progress=json.dumps(new.progress, sort_keys=True),
                report="" if new.report is None else json.dumps(new.report, sort_keys=True),
                error=new.error,
                version=read.version + 1,
            )
        )
        return bool(done.rowcount)


@dataclass(frozen=True)
class Head:
    """What /metrics reads of each tranche it shows at every scrape: no JSON column."""

    name: str
    state: str
    threshold: float
    started_at: datetime | None
    judged_at: datetime | None
    version: int


def heads(
    store: Store, open_states: tuple[str, ...], closed: tuple[str, ...], keep: int
) -> list[Head]:
    """The tranches in ``open_states``, and the ``keep`` last judged of those ``closed``."""
    cols = (
        TrancheRow.name,
        TrancheRow.state,
        TrancheRow.threshold,
        TrancheRow.started_at,
        TrancheRow.judged_at,
        TrancheRow.version,
    )
    opened = select(*cols).where(TrancheRow.state.in_(open_states))
    last = (
        select(*cols)
        .where(TrancheRow.state.in_(closed))
        .order_by(TrancheRow.judged_at.desc(), TrancheRow.name)
        .limit(keep)
    )
    with Session(store.engine) as s:
        rows = [*s.execute(opened), *s.execute(last)]
    return sorted((Head(*r) for r in rows), key=lambda h: h.name)


@dataclass(frozen=True)
class Run:
    """A tranche's nodes and its run's progress, as of ``version``."""

    name: str
    version: int
    state: str
    nodes: tuple[str, ...]
    progress: dict[str, Any]


def runs(store: Store, names: list[str]) -> list[Run]:
    """The named tranches' nodes and progress (the report, the largest column, is not read)."""
    if not names:
        return []
    q = select(
        TrancheRow.name, TrancheRow.version, TrancheRow.state, TrancheRow.nodes, TrancheRow.progress
    ).where(TrancheRow.name.in_(names))
    with Session(store.engine) as s:
        return [
            Run(name, version, state, tuple(json.loads(nodes)), json.loads(progress or "{}"))
            for name, version, state, nodes, progress in s.execute(q)
        ]
