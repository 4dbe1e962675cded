"""Identities in the store: API tokens (their digests, never the tokens) and browser
sessions (the cookie's digest and the CSRF token's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.orm import Session

from compute.domain import AuditEntry
from compute.store.models import ApiTokenRow, SessionRow
from compute.store.repository import Store
from compute.store.rows import table_of
from compute.store.tx import Tx

# Last use is written at most this often per token: a write per request would make every
# read a write transaction.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    prefix: str
    role: str
    tenant: str | None
    node: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewToken:
    name: str
    prefix: str
    digest: str
    role: str
    tenant: str | None
    node: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    subject: str
    role: str
    tenant: str | None
    node: str | None
    name: str
    created_at: datetime
    expires_at: datetime
    csrf: str


def _token(r: ApiTokenRow | Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=r.id,
        name=r.name,
        prefix=r.prefix,
        role=r.role,
        tenant=r.tenant,
        node=r.node,
        created_at=r.created_at,
        created_by=r.created_by,
        expires_at=r.expires_at,
        last_used_at=r.last_used_at,
        revoked_at=r.revoked_at,
    )


def add_tokens(
    store: Store, new: list[NewToken], at: datetime, by: str, audit: list[AuditEntry]
) -> list[TokenRecord]:
    """Store tokens (one transaction, with their audit entries); returns them as stored."""
    with store.transaction() as tx:
        rows = [
            ApiTokenRow(
                name=t.name,
                prefix=t.prefix,
                digest=t.digest,
                role=t.role,
                tenant=t.tenant,
                node=t.node,
                created_at=at,
                created_by=str.__str__(by),
                expires_at=t.expires_at,
            )
            for t in new
        ]
        tx.s.add_all(rows)
        tx.s.flush()
        for entry in audit:
            tx.add_audit(entry)
        return [_token(r) for r in rows]


def token_by_prefix(store: Store, prefix: str) -> tuple[TokenRecord, str] | None:
    """The token with this prefix and its digest (to compare), or None."""
    t = table_of(ApiTokenRow)  # every request asks: a Core read, no ORM session (7x cheaper)
    with store.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.prefix == prefix)).first()
    return None if row is None else (_token(row), str(row.digest))


def token(store: Store, id_: int) -> TokenRecord | None:
    with Session(store.engine) as s:
        row = s.get(ApiTokenRow, id_)
        return None if row is None else _token(row)


def tokens(store: Store, tenant: str | None = None) -> list[TokenRecord]:
    """Every token (of ``tenant`` only, if given), oldest first."""
    q = select(ApiTokenRow).order_by(ApiTokenRow.id)
    if tenant is not None:
        q = q.where(ApiTokenRow.tenant == tenant)
    with Session(store.engine) as s:
        return [_token(r) for r in s.scalars(q)]


def touch_token(store: Store, record: TokenRecord, at: datetime) -> None:
    if record.last_used_at is not None and at - record.last_used_at < TOUCH_EVERY:
        return
    with store.transaction() as tx:
        tx.s.execute(update(ApiTokenRow).where(ApiTokenRow.id == record.id).values(last_used_at=at))


def revoke_token(store: Store, id_: int, at: datetime, audit: AuditEntry) -> TokenRecord | None:
    """Revoke (idempotent: the first revocation's time stays); None if there is no such
    token."""
    with store.transaction() as tx:
        row = tx.s.get(ApiTokenRow, id_, with_for_update=True)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = at
            tx.add_audit(audit)
        tx.s.flush()
        return _token(row)


def add_session(store: Store, record: SessionRecord) -> None:
    with store.transaction() as tx:
        # Expired sessions go when new ones come: the table stays the size of who is in.
        tx.s.execute(delete(SessionRow).where(SessionRow.expires_at <= record.created_at))
        tx.s.add(
            SessionRow(
                id=record.id,
                subject=record.subject,
                role=record.role,
                tenant=record.tenant,
                node=record.node,
                name=record.name,
                created_at=record.created_at,
                expires_at=record.expires_at,
                csrf=record.csrf,
            )
        )


def session(store: Store, id_: str) -> SessionRecord | None:
    with Session(store.engine) as s:
        r = s.get(SessionRow, id_)
        if r is None:
            return None
        return SessionRecord(
            id=r.id,
            subject=r.subject,
            role=r.role,
            tenant=r.tenant,
            node=r.node,
            name=r.name,
            created_at=r.created_at,
            expires_at=r.expires_at,
            csrf=r.csrf,
        )


def end_session(store: Store, id_: str) -> bool:
    with store.transaction() as tx:
        return bool(
            getattr(tx.s.execute(delete(SessionRow).where(SessionRow.id == id_)), "rowcount", 0)
        )


def revoke_tenant_credentials(tx: Tx, tenant: str, at: datetime) -> int:
    """In the transaction that deletes a tenant: its tokens revoked and its people's
    sessions ended, so a tenant made later under the same name starts with no one in it.
    The number of tokens revoked."""
    done = tx.s.execute(
        update(ApiTokenRow)
        .where(ApiTokenRow.tenant == tenant, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    tx.s.execute(delete(SessionRow).where(SessionRow.tenant == tenant))
    return int(getattr(done, "rowcount", 0) or 0)


def end_sessions_of(store: Store, subject: str) -> None:
    """Log out every browser of a credential (its token was revoked)."""
    with store.transaction() as tx:
        tx.s.execute(delete(SessionRow).where(SessionRow.subject == subject))
