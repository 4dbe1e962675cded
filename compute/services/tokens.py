"""API tokens: issue (shown once), list, revoke, and the principal a presented one names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from compute.auth import tokens as fmt
from compute.auth.policy import Forbidden, Unauthenticated, may_issue, may_manage
from compute.auth.principal import TENANT_ROLES, Actor, Principal, Role
from compute.domain import AuditEntry
from compute.errors import InvalidInput, NotFoundError
from compute.services.token_cache import VerifiedTokens
from compute.store import Store, identities
from compute.store.identities import NewToken, TokenRecord
from compute.validation import node_name, short_text, tenant_name

# Tokens issued at once for a pool, at most: a pool is racks, not a census.
MAX_BULK = 10_000


@dataclass(frozen=True, slots=True)
class Created:
    record: TokenRecord
    plaintext: str  # shown once: the store keeps only its digest


def _checked(
    store: Store, role: str, tenant: str | None, node: str | None, name: str
) -> tuple[Role, str | None, str | None, str]:
    """The request's role, tenant, node and name, or InvalidInput naming what is wrong."""
    try:
        r = Role(role)
    except ValueError:
        raise InvalidInput(
            f"role: {str(role)[:40]!r} is not one of {', '.join(x.value for x in Role)}"
        ) from None
    try:
        tenant = tenant_name(tenant) if tenant is not None else None
        node = node_name(node) if node is not None else None
        name = short_text(name) if name else ""
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if (r in TENANT_ROLES) != (tenant is not None):
        raise InvalidInput(f"role {r} {'needs' if tenant is None else 'takes no'} --tenant")
    if (r is Role.NODE) != (node is not None):
        raise InvalidInput(f"role {r} {'needs' if node is None else 'takes no'} --node")
    if tenant is not None and store.tenant(tenant) is None:
        raise NotFoundError(f"unknown tenant {tenant!r}")
    if node is not None and store.node(node) is None:
        raise NotFoundError(f"unknown node {node!r}")
    return r, tenant, node, name


def create(
    store: Store,
    by: Principal,
    *,
    role: str,
    tenant: str | None = None,
    node: str | None = None,
    lifetime: timedelta | None = None,
    name: str = "",
    now: datetime,
    at: datetime,
) -> Created:
    """Issue one token. ``now`` is the wall clock (a token's life is real time), ``at`` the
    control plane's (the audit trail's time)."""
    r, tenant, node, name = _checked(store, role, tenant, node, name)
    if not may_issue(by, r, tenant):
        raise Forbidden(f"{by.role} may not issue {r} tokens" + (f" of {tenant}" if tenant else ""))
    return _issue(store, by, [(r, tenant, node, name)], lifetime, now, at)[0]


def create_for_pool(
    store: Store,
    by: Principal,
    pool: str,
    *,
    lifetime: timedelta | None = None,
    now: datetime,
    at: datetime,
) -> list[Created]:
    """One node token for each node of ``pool`` (operators only), in one transaction."""
    if by.role is not Role.OPERATOR:
        raise Forbidden(f"{by.role} may not issue node tokens")
    if pool not in {p.name for p in store.pools()}:
        raise NotFoundError(f"unknown pool {pool!r}")
    nodes = [n.name for n in store.nodes(pool=pool)]
    if not nodes:
        raise NotFoundError(f"pool {pool!r} has no nodes yet (a sweep finds them)")
    if len(nodes) > MAX_BULK:
        raise InvalidInput(f"pool {pool!r} has {len(nodes)} nodes; at most {MAX_BULK} at once")
    wanted = [(Role.NODE, None, n, f"node {n}") for n in nodes]
    return _issue(store, by, wanted, lifetime, now, at)


def _issue(
    store: Store,
    by: Principal,
    wanted: Sequence[tuple[Role, str | None, str | None, str]],
    lifetime: timedelta | None,
    now: datetime,
    at: datetime,
) -> list[Created]:
    expires = now + lifetime if lifetime is not None else None
    issued = [fmt.issue() for _ in wanted]
    new = [
        NewToken(
            name=name,
            prefix=i.prefix,
            digest=i.digest,
            role=r.value,
            tenant=tenant,
            node=node,
            expires_at=expires,
        )
        for i, (r, tenant, node, name) in zip(issued, wanted, strict=True)
    ]
    audit = [
        AuditEntry(
            at=at,
            actor=Actor(by),
            action="token.create",
            target=f"token/{t.prefix}",
            detail={
                "role": t.role,
                "tenant": t.tenant,
                "node": t.node,
                "name": t.name,
                "expires_at": expires.isoformat() if expires else None,
            },
        )
        for t in new
    ]
    records = identities.add_tokens(store, new, now, by.actor, audit)
    return [Created(rec, i.plaintext) for rec, i in zip(records, issued, strict=True)]


def visible(store: Store, by: Principal) -> list[TokenRecord]:
    """The tokens ``by`` may see: all for an operator, its tenant's for a tenant-admin."""
    if by.role is Role.OPERATOR:
        return identities.tokens(store)
    if by.role is Role.TENANT_ADMIN:
        return identities.tokens(store, tenant=by.tenant)
    raise Forbidden(f"{by.role} may not list tokens")


def revoke(store: Store, by: Principal, id_: int, *, now: datetime, at: datetime) -> TokenRecord:
    """Revoke a token (and end the browser sessions logged in with it). A token ``by`` may
    not manage is as unknown to it as one that does not exist."""
    found = identities.token(store, id_)
    if found is None or not may_manage(by, found.tenant):
        raise NotFoundError(f"no token {id_}")
    entry = AuditEntry(
        at=at,
        actor=Actor(by),
        action="token.revoke",
        target=f"token/{found.prefix}",
        detail={"id": id_, "role": found.role, "tenant": found.tenant, "node": found.node},
    )
    revoked = identities.revoke_token(store, id_, now, entry)
    if revoked is None:
        raise NotFoundError(f"no token {id_}")
    identities.end_sessions_of(store, f"token:{id_}")
    return revoked


def authenticate(
    store: Store,
    credential: str,
    *,
    now: datetime,
    source: str,
    verified: VerifiedTokens | None = None,
) -> Principal:
    """The principal a presented token names; Unauthenticated (one line, no more said to
    the client than "not valid") if it is malformed, unknown, expired or revoked. With
    ``verified``, a token verified there a moment ago is taken from it, and one verified
    now is put there."""
    presented = fmt.parse(credential)
    if presented is None:
        raise Unauthenticated("not a computectl token")
    generation = 0
    if verified is not None:
        known = verified.get(presented.digest, now)
        if known is not None:
            return principal_of(known, source)
        generation = verified.generation
    found = identities.token_by_prefix(store, presented.prefix)
    # Compared even when unknown, so a miss costs what a hit does.
    stored, digest = found if found is not None else (None, "0" * 64)
    if not fmt.same(digest, presented) or stored is None:
        raise Unauthenticated("unknown token")
    if stored.revoked_at is not None:
        raise Unauthenticated(f"token {stored.prefix} was revoked")
    if stored.expires_at is not None and stored.expires_at <= now:
        raise Unauthenticated(f"token {stored.prefix} has expired")
    identities.touch_token(store, stored, now)
    if verified is not None:
        verified.put(presented.digest, stored, generation)
    return principal_of(stored, source)


def principal_of(record: TokenRecord, source: str) -> Principal:
    return Principal(
        subject=f"token:{record.id}",
        role=Role(record.role),
        tenant=record.tenant,
        node=record.node,
        name=record.name or record.prefix,
        source=source,
    )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def token_view(t: TokenRecord, now: datetime) -> dict[str, Any]:
    """A token as listed: never its secret (the store does not have it)."""
    if t.revoked_at is not None:
        state = "revoked"
    elif t.expires_at is not None and t.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": t.id,
        "name": t.name,
        "prefix": t.prefix,
        "role": t.role,
        "tenant": t.tenant,
        "node": t.node,
        "state": state,
        "created_at": _iso(t.created_at),
        "created_by": t.created_by,
        "expires_at": _iso(t.expires_at),
        "last_used_at": _iso(t.last_used_at),
        "revoked_at": _iso(t.revoked_at),
    }


def created_view(c: Created, now: datetime) -> dict[str, Any]:
    return {**token_view(c.record, now), "token": c.plaintext}
