"""Routes about access: who am I, API tokens, and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from compute.api.deps import Now, Rt, Who
from compute.api.problems import PROBLEM_RESPONSES
from compute.api.schemas import TokenRequest
from compute.auth import tokens as fmt
from compute.errors import InvalidInput
from compute.services import audit, tokens
from compute.services.audit import MAX_LIMIT

access = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
TokenId = Annotated[int, Path(ge=1, le=2**62, description="Token id.")]


@access.get("/whoami", summary="Who this credential is: subject, role, tenant or node")
def whoami(who: Who) -> dict[str, Any]:
    return {
        "subject": who.subject,
        "name": who.name,
        "role": who.role.value,
        "tenant": who.tenant,
        "node": who.node,
        "source": who.source,
    }


@access.get("/tokens", summary="API tokens (a tenant-admin: its tenant's); never their secrets")
def list_tokens(rt: Rt, who: Who, now: Now) -> dict[str, Any]:
    return {"tokens": [tokens.token_view(t, now) for t in tokens.visible(rt.store, who)]}


@access.post("/tokens", status_code=201, summary="Issue an API token (shown once, in this answer)")
def create_token(rt: Rt, who: Who, now: Now, body: TokenRequest) -> dict[str, Any]:
    try:
        lifetime = fmt.parse_lifetime(body.expires) if body.expires is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    created = tokens.create(
        rt.store,
        who,
        role=body.role,
        tenant=body.tenant,
        node=body.node,
        lifetime=lifetime,
        name=body.name or "",
        now=now,
        at=rt.clock.now(),
    )
    return tokens.created_view(created, now)


@access.delete("/tokens/{id}", summary="Revoke an API token (its browser sessions end too)")
def revoke_token(rt: Rt, who: Who, now: Now, id: TokenId) -> dict[str, Any]:
    return tokens.token_view(tokens.revoke(rt.store, who, id, now=now, at=rt.clock.now()), now)


@access.get("/audit", summary="The audit trail, newest first (a tenant-admin: its tenant's)")
def read_audit(
    rt: Rt,
    who: Who,
    actor: Annotated[str | None, Query(max_length=255, description="token:12, local:alice")] = None,
    since: Annotated[str | None, Query(max_length=40, description="24h, 7d or ISO 8601")] = None,
    tenant: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    after = audit.parse_since(since, rt.clock.now()) if since is not None else None
    found = audit.read(rt.store, who, actor=actor, since=after, tenant=tenant, limit=limit)
    return {"entries": [audit.audit_view(e) for e in found]}
