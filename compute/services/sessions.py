"""Browser sessions: a random cookie and a CSRF token, both kept only as digests.

The cookie (``computectl_session``) is HttpOnly and SameSite=Strict; a request that changes
state with it must also send the CSRF token in ``X-CSRF-Token`` (the page reads it from the
``computectl_csrf`` cookie, which it may read). The OIDC callback logs people in the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from compute.auth.principal import Principal, Role
from compute.store import Store, identities
from compute.store.identities import SessionRecord

COOKIE = "computectl_session"
CSRF_COOKIE = "computectl_csrf"
CSRF_HEADER = "x-csrf-token"
LIFETIME = timedelta(hours=12)
_SECRET_BYTES = 32
# A cookie or header value longer than this is not one of ours.
MAX_VALUE = 128


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Resolved:
    principal: Principal
    csrf: str  # the digest to check an unsafe request's header against


def create_session(
    store: Store,
    principal: Principal,
    *,
    now: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, str]:
    """Log ``principal`` in: returns (cookie value, CSRF token), neither of them stored.
    The session ends after LIFETIME, or at ``until`` if sooner (the token's expiry)."""
    now = now or datetime.now(UTC)
    expires = now + LIFETIME if until is None else min(now + LIFETIME, until)
    cookie, csrf = secrets.token_urlsafe(_SECRET_BYTES), secrets.token_urlsafe(_SECRET_BYTES)
    identities.add_session(
        store,
        SessionRecord(
            id=_digest(cookie),
            subject=principal.subject,
            role=principal.role.value,
            tenant=principal.tenant,
            node=principal.node,
            name=principal.name,
            created_at=now,
            expires_at=expires,
            csrf=_digest(csrf),
        ),
    )
    return cookie, csrf


def resolve(store: Store, cookie: str, *, now: datetime, source: str) -> Resolved | None:
    """The session a cookie names, if it is live; None if not (unknown, ended, expired)."""
    if not cookie or len(cookie) > MAX_VALUE:
        return None
    found = identities.session(store, _digest(cookie))
    if found is None or found.expires_at <= now:
        return None
    principal = Principal(
        subject=found.subject,
        role=Role(found.role),
        tenant=found.tenant,
        node=found.node,
        name=found.name,
        source=source,
    )
    return Resolved(principal, found.csrf)


def csrf_ok(resolved: Resolved, header: str | None) -> bool:
    if not header or len(header) > MAX_VALUE:
        return False
    return hmac.compare_digest(resolved.csrf.encode(), _digest(header).encode())


def end(store: Store, cookie: str) -> bool:
    """Log out: the session is gone from the store (a copied cookie is worth nothing)."""
    if not cookie or len(cookie) > MAX_VALUE:
        return False
    return identities.end_session(store, _digest(cookie))
