"""Quota requests in the store: a tenant's ask for one pool's GPU quota and its decision.

Every state change is one conditional update (``WHERE state = <expected>``) in the same
transaction as its audit entry, so two operators deciding at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from compute.store.models import AuditRow, QuotaRequestRow
from compute.store.repository import Store

PENDING = "pending"
APPLYING = "applying"
APPROVED = "approved"
DECLINED = "declined"
FAILED = "failed"
STATES = (PENDING, APPLYING, APPROVED, DECLINED, FAILED)


@dataclass(frozen=True, slots=True)
class QuotaRequestRecord:
    id: int
    tenant: str
    pool: str
    gpu_model: str
    gpus: int
    current: int | None
    reason: str
    requested_by: str
    requested_at: datetime
    state: str
    decided_by: str | None
    decided_at: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class Audit:
    """The audit entry that goes with a change, with its result and tenant explicit (an
    operator deciding has no tenant of its own, and the tenant's admin should see it)."""

    at: datetime
    actor: str
    action: str
    target: str
    result: str
    tenant: str
    detail: dict[str, Any]


def _record(r: QuotaRequestRow) -> QuotaRequestRecord:
    return QuotaRequestRecord(
        id=r.id,
        tenant=r.tenant,
        pool=r.pool,
        gpu_model=r.gpu_model,
        gpus=r.gpus,
        current=r.current,
        reason=r.reason,
        requested_by=r.requested_by,
        requested_at=r.requested_at,
        state=r.state,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        note=r.note,
    )


def _audit_row(a: Audit) -> AuditRow:
    source = getattr(a.actor, "source", None)
    return AuditRow(
        at=a.at,
        actor=str.__str__(a.actor),
        action=a.action,
        target=a.target,
        detail=a.detail,
        source=source if isinstance(source, str) else "local",
        result=a.result,
        tenant=a.tenant,
    )


def add(
    store: Store,
    *,
    tenant: str,
    pool: str,
    gpu_model: str,
    gpus: int,
    current: int | None,
    reason: str,
    by: str,
    at: datetime,
    max_pending: int,
) -> QuotaRequestRecord | None:
    """Store a pending request with its audit entry; None if the tenant already has a
    pending request for the pool (one at a time per pool) or ``max_pending`` in all."""
    with store.transaction() as tx:
        pending = list(
            tx.s.scalars(
                select(QuotaRequestRow.pool).where(
                    QuotaRequestRow.tenant == tenant,
                    QuotaRequestRow.state.in_((PENDING, APPLYING)),
                )
            )
        )
        if pool in pending or len(pending) >= max_pending:
            return None
        row = QuotaRequestRow(
            tenant=tenant,
            pool=pool,
            gpu_model=gpu_model,
            gpus=gpus,
            current=current,
            reason=reason,
            requested_by=str.__str__(by),
            requested_at=at,
            state=PENDING,
            note="",
        )
        tx.s.add(row)
        tx.s.flush()
        tx.s.add(
            _audit_row(
                Audit(
                    at=at,
                    actor=by,
                    action="quota_request.create",
                    target=f"quota-request/{row.id}",
                    result="ok",
                    tenant=tenant,
                    detail={"tenant": tenant, "pool": pool, "gpus": gpus, "current": current},
                )
            )
        )
        return _record(row)


def get(store: Store, id_: int) -> QuotaRequestRecord | None:
    with Session(store.engine) as s:
        row = s.get(QuotaRequestRow, id_)
        return None if row is None else _record(row)


def listed(
    store: Store,
    *,
    tenant: str | None = None,
    states: Sequence[str] | None = None,
    limit: int = 200,
) -> list[QuotaRequestRecord]:
    """Newest first; of one tenant and some states if given."""
    q = select(QuotaRequestRow).order_by(QuotaRequestRow.id.desc()).limit(limit)
    if tenant is not None:
        q = q.where(QuotaRequestRow.tenant == tenant)
    if states:
        q = q.where(QuotaRequestRow.state.in_(list(states)))
    with Session(store.engine) as s:
        return [_record(r) for r in s.scalars(q)]


def count_pending(store: Store) -> int:
    with Session(store.engine) as s:
        q = select(func.count()).where(QuotaRequestRow.state == PENDING)
        return int(s.scalar(q.select_from(QuotaRequestRow)) or 0)


def transition(
    store: Store,
    id_: int,
    *,
    expect: str,
    to: str,
    by: str,
    at: datetime,
    note: str,
    audit: Audit | None,
) -> QuotaRequestRecord | None:
    """Move request ``id_`` from ``expect`` to ``to`` (recording who and when, and the
    note), with its audit entry; None if it is not in ``expect`` any more (or not there)."""
    with store.transaction() as tx:
        done = tx.s.execute(
            update(QuotaRequestRow)
            .where(QuotaRequestRow.id == id_, QuotaRequestRow.state == expect)
            .values(state=to, decided_by=str.__str__(by), decided_at=at, note=note)
        )
        if not getattr(done, "rowcount", 0):
            return None
        if audit is not None:
            tx.s.add(_audit_row(audit))
        row = tx.s.get(QuotaRequestRow, id_, populate_existing=True)
        assert row is not None
        return _record(row)
