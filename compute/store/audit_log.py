"""The audit trail read back, and the entries only the front door writes (refusals, failed
logins): with who, what, on what, when, from where, and the result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from compute.store.models import AuditRow
from compute.store.repository import Store


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    source: str
    result: str
    tenant: str | None
    detail: dict[str, Any]


def add(
    store: Store,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    source: str,
    result: str,
    tenant: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    with store.transaction() as tx:
        tx.s.add(
            AuditRow(
                at=at,
                actor=actor,
                action=action,
                target=target,
                source=source,
                result=result,
                tenant=tenant,
                detail=detail or {},
            )
        )


def entries(
    store: Store,
    *,
    actor: str | None = None,
    since: datetime | None = None,
    tenant: str | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Newest first. ``actor`` matches the subject ("token:12") or the whole actor."""
    q = select(AuditRow)
    if actor is not None:
        q = q.where(
            or_(AuditRow.actor == actor, AuditRow.actor.startswith(f"{actor} (", autoescape=True))
        )
    if since is not None:
        q = q.where(AuditRow.at >= since)
    if tenant is not None:
        q = q.where(AuditRow.tenant == tenant)
    q = q.order_by(AuditRow.id.desc()).limit(limit)
    with Session(store.engine) as s:
        return [
            AuditRecord(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                target=r.target,
                source=r.source,
                result=r.result,
                tenant=r.tenant,
                detail=dict(r.detail),
            )
            for r in s.scalars(q)
        ]
