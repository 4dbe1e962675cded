"""The audit trail read back: filtered by actor, time and tenant, limited to what the
reader may see; and the entries the front door writes itself (refusals, failed logins)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from compute.auth.policy import Forbidden, audit_tenant
from compute.auth.principal import Principal
from compute.errors import InvalidInput
from compute.store import Store, audit_log
from compute.store.audit_log import AuditRecord
from compute.validation import tenant_name
from health.inputs import printable

MAX_LIMIT = 1000
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=3660)


def parse_since(text: str, now: datetime) -> datetime:
    """ "24h", "7d", "90m", "30s" back from ``now``, or an ISO 8601 time with its zone."""
    t = text.strip()
    if len(t) > 40:
        raise InvalidInput("since: too long; give a duration such as 24h or an ISO 8601 time")
    if t[:-1].isdigit() and t[-1:] in _UNIT:
        span = timedelta(seconds=int(t[:-1]) * _UNIT[t[-1]])
        if span > MAX_WINDOW:
            raise InvalidInput(f"since: {t} is longer than {MAX_WINDOW.days} days")
        return now - span
    try:
        at = datetime.fromisoformat(t)
    except ValueError:
        raise InvalidInput(
            f"since: {printable(t)!r} is neither a duration (24h, 7d) nor an ISO 8601 time"
        ) from None
    if at.tzinfo is None:
        raise InvalidInput("since: give the time's zone (e.g. 2026-01-05T08:00:00+00:00)")
    return at


def read(
    store: Store,
    reader: Principal,
    *,
    actor: str | None = None,
    since: datetime | None = None,
    tenant: str | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Newest first. A tenant-admin reads its own tenant's entries only: asking for another
    tenant's is refused, asking for none gives its own."""
    may, only = audit_tenant(reader)
    if not may:
        raise Forbidden(f"{reader.role} may not read the audit trail")
    if tenant is not None:
        try:
            tenant = tenant_name(tenant)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    if only is not None:
        if tenant not in (None, only):
            raise Forbidden(f"{reader.role} of {only} may read only {only}'s audit trail")
        tenant = only
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be 1..{MAX_LIMIT}")
    if actor is not None and not 0 < len(actor) <= 255:
        raise InvalidInput("actor: 1-255 characters")
    return audit_log.entries(store, actor=actor, since=since, tenant=tenant, limit=limit)


def record(
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
    # Whatever a client sent is made printable and cut to the columns' sizes.
    audit_log.add(
        store,
        at=at,
        actor=printable(actor)[:255],
        action=action[:64],
        target=printable(target)[:255],
        source=printable(source)[:255],
        result=printable(result)[:500],
        tenant=tenant,
        detail=detail,
    )


def audit_view(r: AuditRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": r.at.isoformat(),
        "actor": r.actor,
        "action": r.action,
        "target": r.target,
        "source": r.source,
        "result": r.result,
        "tenant": r.tenant,
        "detail": r.detail,
    }
