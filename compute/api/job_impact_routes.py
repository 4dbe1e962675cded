"""A tenant's incidents: its jobs and pods that infrastructure faults hit, and the GPU-hours
they lost in a month (compute/services/job_impact.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services import job_impact
from compute.validation import TenantName

job_impact_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Tenant = Annotated[TenantName, Path(description="Tenant name.")]
Month = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="UTC month (YYYY-MM); default this one."
    ),
]


@job_impact_api.get(
    "/tenants/{name}/incidents",
    summary="A tenant's jobs and pods hit by infrastructure faults, and the GPU-hours lost",
    description="Per job or pod: the node, the fault (the drain's check and reason, or the "
    "finding a node failure is linked to), its GPUs, start and end, and the GPU-hours it "
    "lost (its GPUs from its start to the drain, or to its end). ``gpu_hours_lost``: the "
    "month's sum.",
)
def get_tenant_incidents(rt: Rt, name: Tenant, month: Month = None) -> dict[str, Any]:
    return job_impact.impact_view(job_impact.tenant_impact(rt.store, name, month, rt.clock.now()))
