"""GPU power caps in the store: each cap with who, why, before, requested, clamped, after and
when, and its audit entry and event in the same transaction as its change.

Every change of state is one conditional update (``WHERE state IN <expected>``), so a node's
outcome and an operator's revert arriving at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from compute.domain import Event
from compute.store.models import AuditRow
from compute.store.power_models import PowerCapRow
from compute.store.repository import Store, Tx

PENDING = "pending"  # recorded; the node agent has not applied it yet
APPLIED = "applied"  # the node applied it and read it back
FAILED = "failed"  # the node could not apply it (the detail says why)
REVERTING = "reverting"  # a revert recorded; the node agent has not restored the limits yet
REVERTED = "reverted"  # the node restored the limits before the cap
REVERT_FAILED = "revert_failed"  # the node could not restore them
SUPERSEDED = "superseded"  # a newer cap on the same GPUs took its place
CANCELLED = "cancelled"  # reverted before anything was applied: nothing to undo
STATES = (PENDING, APPLIED, FAILED, REVERTING, REVERTED, REVERT_FAILED, SUPERSEDED, CANCELLED)
ACTIVE = (PENDING, APPLIED, FAILED, REVERTING, REVERT_FAILED)
# What the node agent has to do: apply these, restore those.
TO_APPLY, TO_RESTORE = (PENDING,), (REVERTING,)


@dataclass(frozen=True, slots=True)
class PowerCap:
    id: int
    node: str
    rack: str
    gpus: tuple[int, ...] | None
    watts: float
    state: str
    source: str
    actor: str
    reason: str
    created_at: datetime
    expires_at: datetime | None
    updated_at: datetime
    before: Mapping[str, float | None] = field(default_factory=dict)
    clamped: Mapping[str, float] = field(default_factory=dict)
    after: Mapping[str, float | None] = field(default_factory=dict)
    detail: str = ""
    reverted_by: str = ""
    revert_reason: str = ""


@dataclass(frozen=True, slots=True)
class NewCap:
    node: str
    rack: str
    gpus: tuple[int, ...] | None
    watts: float
    source: str
    actor: str
    reason: str
    expires_at: datetime | None
    # What an older cap this one supersedes recorded as the limits before it.
    before: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Note:
    """The audit entry and the event that go with a change."""

    action: str
    event: str
    detail: Mapping[str, Any]
    result: str = "ok"


def _cap(r: PowerCapRow) -> PowerCap:
    return PowerCap(
        id=r.id,
        node=r.node,
        rack=r.rack,
        gpus=None if r.gpus is None else tuple(r.gpus),
        watts=r.watts,
        state=r.state,
        source=r.source,
        actor=r.actor,
        reason=r.reason,
        created_at=r.created_at,
        expires_at=r.expires_at,
        updated_at=r.updated_at,
        before=dict(r.before or {}),
        clamped=dict(r.clamped or {}),
        after=dict(r.after or {}),
        detail=r.detail,
        reverted_by=r.reverted_by,
        revert_reason=r.revert_reason,
    )


def _note(tx: Tx, cap: PowerCapRow, actor: str, at: datetime, note: Note) -> None:
    source = getattr(actor, "source", None)
    detail = {"cap": cap.id, "node": cap.node, "state": cap.state, **note.detail}
    tx.s.add(
        AuditRow(
            at=at,
            actor=str.__str__(actor),
            action=note.action,
            target=f"node/{cap.node}",
            detail=detail,
            source=source if isinstance(source, str) else "local",
            result=note.result,
            tenant=None,
        )
    )
    tx.add_event(
        Event(at=at, node=cap.node, kind=note.event, reason=cap.reason[:200], actor=actor,
              detail=detail)
    )  # fmt: skip


def add(
    store: Store, caps: Sequence[NewCap], supersede: Collection[int], at: datetime, note: Note
) -> list[PowerCap]:
    """Record ``caps`` (pending) and mark ``supersede`` superseded, in one transaction."""
    with store.transaction() as tx:
        if supersede:
            tx.s.execute(
                update(PowerCapRow)
                .where(PowerCapRow.id.in_(list(supersede)), PowerCapRow.state.in_(ACTIVE))
                .values(state=SUPERSEDED, updated_at=at)
            )
        rows = []
        for c in caps:
            row = PowerCapRow(
                node=c.node, rack=c.rack, gpus=None if c.gpus is None else list(c.gpus),
                watts=c.watts, state=PENDING, source=c.source, actor=str.__str__(c.actor),
                reason=c.reason, created_at=at, expires_at=c.expires_at, updated_at=at,
                before=dict(c.before), clamped={}, after={}, detail="", reverted_by="",
                revert_reason="",
            )  # fmt: skip
            tx.s.add(row)
            rows.append(row)
        tx.s.flush()
        for row, c in zip(rows, caps, strict=True):
            _note(tx, row, c.actor, at, note)
        return [_cap(r) for r in rows]


def transition(
    store: Store,
    cap_id: int,
    *,
    expect: Collection[str],
    to: str,
    actor: str,
    at: datetime,
    note: Note,
    values: Mapping[str, Any] | None = None,
) -> PowerCap | None:
    """Move cap ``cap_id`` from one of ``expect`` to ``to`` with ``values``, audited; None
    when it is in none of them (someone else moved it first)."""
    with store.transaction() as tx:
        done = tx.s.execute(
            update(PowerCapRow)
            .where(PowerCapRow.id == cap_id, PowerCapRow.state.in_(list(expect)))
            .values(state=to, updated_at=at, **dict(values or {}))
        )
        if not getattr(done, "rowcount", 0):
            return None
        row = tx.s.get(PowerCapRow, cap_id, populate_existing=True)
        assert row is not None
        _note(tx, row, actor, at, note)
        return _cap(row)


def listed(
    store: Store,
    *,
    nodes: Collection[str] | None = None,
    states: Collection[str] | None = None,
    ids: Collection[int] | None = None,
    expired_by: datetime | None = None,
    limit: int = 1000,
) -> list[PowerCap]:
    """Oldest first."""
    q = select(PowerCapRow).order_by(PowerCapRow.id).limit(limit)
    if nodes is not None:
        q = q.where(PowerCapRow.node.in_(list(nodes)))
    if states is not None:
        q = q.where(PowerCapRow.state.in_(list(states)))
    if ids is not None:
        q = q.where(PowerCapRow.id.in_(list(ids)))
    if expired_by is not None:
        q = q.where(PowerCapRow.expires_at.is_not(None), PowerCapRow.expires_at <= expired_by)
    with Session(store.engine) as s:
        return [_cap(r) for r in s.scalars(q)]


def recent_counts(store: Store, nodes: Collection[str], since: datetime) -> dict[str, int]:
    """Caps given to each of ``nodes`` since ``since`` (the rate limit's count)."""
    q = (
        select(PowerCapRow.node, func.count())
        .where(PowerCapRow.node.in_(list(nodes)), PowerCapRow.created_at >= since)
        .group_by(PowerCapRow.node)
    )
    with Session(store.engine) as s:
        return {n: int(c) for n, c in s.execute(q).all()}


def state_counts(store: Store) -> dict[str, int]:
    """Caps per state, over the states /metrics shows (active ones and failures)."""
    q = (
        select(PowerCapRow.state, func.count())
        .where(PowerCapRow.state.in_((*ACTIVE,)))
        .group_by(PowerCapRow.state)
    )
    with Session(store.engine) as s:
        return {st: int(c) for st, c in s.execute(q).all()}
