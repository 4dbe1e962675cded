"""A tenant's GPU-hours per day, pool, GPU model and backend (compute/services/usage.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services.usage import MAX_DAYS, tenant_usage
from compute.validation import TenantName
from compute.views import usage_view

usage_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Tenant = Annotated[TenantName, Path(description="Tenant name.")]
Days = Annotated[
    int, Query(ge=1, le=MAX_DAYS, description="UTC days back, today (so far) included.")
]


@usage_api.get(
    "/tenants/{name}/usage",
    summary="A tenant's GPU-hours per UTC day, pool, GPU model and backend",
)
def get_tenant_usage(rt: Rt, name: Tenant, days: Days = 7) -> dict[str, Any]:
    return usage_view(tenant_usage(rt, name, days))
