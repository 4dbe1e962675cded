"""Quota requests over the API: a tenant's people ask and follow, operators decide.

Who may do what is the authorization table's (compute/auth/policy.py); the service checks
again, so a route added without its row is still refused inside."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from compute.api.deps import ActorName, Rt, Who
from compute.api.problems import PROBLEM_RESPONSES
from compute.runtime import Runtime
from compute.services.quota_requests import QuotaRequests, request_view
from compute.validation import MAX_GPUS_PER_QUOTA, PoolName, Reason, TenantName

quota = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Actor = ActorName
Tenant = Annotated[TenantName, Path(description="Tenant name.")]
RequestId = Annotated[int, Path(ge=1, le=2**62, description="Quota request id.")]
State = Annotated[str | None, Query(pattern="^(pending|applying|approved|declined|failed)$")]


class QuotaRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    pool: PoolName = Field(description="A configured pool that hosts tenants.")
    gpus: int = Field(ge=0, le=MAX_GPUS_PER_QUOTA, description="The quota asked for.")
    reason: Reason = Field(description="Why (one line, shown to operators).")


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    note: Reason | None = Field(None, description="Shown to the tenant with the decision.")


def service(rt: Runtime) -> QuotaRequests:
    return QuotaRequests(rt.store, rt.tenants, rt.settings.effective_pools, rt.clock)


@quota.get("/tenants/{tenant}/quota-requests", summary="A tenant's quota requests, newest first")
def tenant_requests(rt: Rt, who: Who, tenant: Tenant, state: State = None) -> dict[str, Any]:
    found = service(rt).visible(who, tenant, state)
    return {"requests": [request_view(r) for r in found]}


@quota.post(
    "/tenants/{tenant}/quota-requests",
    status_code=201,
    summary="Ask for a pool's GPU quota (an operator approves or declines)",
)
def create_request(
    rt: Rt, who: Who, actor: Actor, tenant: Tenant, body: QuotaRequestBody
) -> dict[str, Any]:
    made = service(rt).create(who, actor, tenant, body.pool, body.gpus, body.reason)
    return request_view(made)


@quota.get("/quota-requests", summary="Every tenant's quota requests, newest first")
def all_requests(rt: Rt, who: Who, state: State = None) -> dict[str, Any]:
    return {"requests": [request_view(r) for r in service(rt).visible(who, None, state)]}


@quota.post(
    "/quota-requests/{id}/approve",
    summary="Approve: the tenant's quota becomes the number asked for, applied on its backends",
)
def approve_request(
    rt: Rt, who: Who, actor: Actor, id: RequestId, body: DecisionBody | None = None
) -> dict[str, Any]:
    note = body.note if body is not None and body.note else ""
    return request_view(service(rt).approve(who, actor, id, note))


@quota.post("/quota-requests/{id}/decline", summary="Decline: nothing changes")
def decline_request(
    rt: Rt, who: Who, actor: Actor, id: RequestId, body: DecisionBody | None = None
) -> dict[str, Any]:
    note = body.note if body is not None and body.note else ""
    return request_view(service(rt).decline(who, actor, id, note))
