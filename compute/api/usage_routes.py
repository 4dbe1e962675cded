"""A tenant's GPU-hours per day, pool, GPU model and backend (compute/services/usage.py),
with its energy beside them (compute/services/billing.py); the fleet's billing export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services import billing
from compute.services.usage import MAX_DAYS
from compute.validation import TenantName
from compute.views import usage_view

usage_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Tenant = Annotated[TenantName, Path(description="Tenant name.")]
Days = Annotated[
    int | None,
    Query(ge=1, le=MAX_DAYS, description="UTC days back, today (so far) included (default 7)."),
]
_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
From = Annotated[
    str | None,
    Query(alias="from", pattern=_DAY, description="First UTC day (YYYY-MM-DD), included."),
]
To = Annotated[
    str | None,
    Query(
        alias="to", pattern=_DAY, description="Last UTC day (YYYY-MM-DD), included; default today."
    ),
]
Format = Annotated[
    str | None,
    Query(pattern="^(json|csv)$", description="json (default), or csv for billing."),
]


def _as_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _csv(view: dict[str, Any], name: str) -> Response:
    return Response(
        billing.to_csv(view),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@usage_api.get(
    "/tenants/{name}/usage",
    summary="A tenant's GPU-hours per UTC day, pool, GPU model and backend, with its energy",
    description="The last ``days`` UTC days, or the days ``from``..``to``. ``billing``: "
    "GPU-hours, energy (kWh) and facility energy (kWh, through the site's PUE) per day, "
    "pool and GPU model. CSV with ``format=csv`` or ``Accept: text/csv``.",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_tenant_usage(
    rt: Rt,
    request: Request,
    name: Tenant,
    days: Days = None,
    first: From = None,
    last: To = None,
    fmt: Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")] = None,
) -> Any:
    since, until = billing.span(rt.clock.now(), days, first, last)
    b, used = billing.tenant_billing(rt, name, since, until)
    view = billing.as_dict(b)
    if _as_csv(request, fmt):
        return _csv(view, f"usage-{name}-{view['since'][:10]}-{view['until'][:10]}")
    return {**usage_view(used), "billing": view}


@usage_api.get(
    "/usage",
    summary="Every tenant's GPU-hours and energy, and idle and out-of-service energy",
    description="The billing export: per tenant, UTC day, pool and GPU model, GPU-hours, "
    "energy and facility energy over the days ``from``..``to`` (at most 93; default "
    "the UTC month so far); idle and "
    "out-of-service GPUs' energy beside, so the energy adds up to the fleet's. CSV with "
    "``format=csv`` or ``Accept: text/csv``.",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_fleet_usage(
    rt: Rt,
    request: Request,
    first: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=_DAY,
            description="First UTC day (YYYY-MM-DD); default the first of to's month.",
        ),
    ] = None,
    last: To = None,
    fmt: Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")] = None,
) -> Any:
    view = billing.fleet_answer(rt, first, last)
    if _as_csv(request, fmt):
        return _csv(view, f"usage-{view['since'][:10]}-{view['until'][:10]}")
    return view
