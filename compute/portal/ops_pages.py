"""The operators' pages (viewers read them too): quota requests to decide, tenants, drains,
capacity and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from compute.api.deps import actor, principal, runtime
from compute.api.quota_routes import service as quota_service
from compute.auth.principal import Role
from compute.portal.render import render
from compute.portal.tenant_pages import read_form
from compute.services import audit, fleet
from compute.services.quota_requests import PENDING, request_view
from compute.views import capacity_view, event_view, tenant_view

ops = APIRouter(include_in_schema=False)
RequestId = Annotated[int, Path(ge=1, le=2**62)]
DRAIN_KINDS = ["drain", "drained", "external_drain_seen", "resume"]
AUDIT_SHOWN = 200


def _requests_page(request: Request, flash: str = "") -> HTMLResponse:
    rt, who = runtime(request), principal(request)
    svc = quota_service(rt)
    everything = [request_view(r) for r in svc.visible(who)]
    return render(
        request,
        "ops_requests.html",
        title="Quota requests",
        pending=[r for r in everything if r["state"] == PENDING],
        decided=[r for r in everything if r["state"] != PENDING],
        may_decide=who.role is Role.OPERATOR,
        flash=flash,
    )


@ops.get("/portal/ops", response_class=HTMLResponse)
def requests_page(request: Request) -> HTMLResponse:
    return _requests_page(request)


async def _decide(request: Request, id_: int, verb: str) -> HTMLResponse:
    form = await read_form(request)

    def run() -> HTMLResponse:
        svc = quota_service(runtime(request))
        who, by, note = principal(request), actor(request), form.get("note", "").strip()
        if verb == "approve":
            done = svc.approve(who, by, id_, note)
            said = f"applied: {done.tenant}'s quota in {done.pool} is now {done.gpus} GPUs"
        else:
            done = svc.decline(who, by, id_, note)
            said = "nothing changed"
        return _requests_page(request, f"Request {id_} {done.state}; {said}.")

    return await run_in_threadpool(run)


@ops.post("/portal/ops/requests/{id}/approve", response_class=HTMLResponse)
async def approve(request: Request, id: RequestId) -> HTMLResponse:
    return await _decide(request, id, "approve")


@ops.post("/portal/ops/requests/{id}/decline", response_class=HTMLResponse)
async def decline(request: Request, id: RequestId) -> HTMLResponse:
    return await _decide(request, id, "decline")


@ops.get("/portal/ops/tenants", response_class=HTMLResponse)
def tenants_page(request: Request) -> HTMLResponse:
    found = [tenant_view(t) for t in fleet.tenants(runtime(request).store)]
    return render(request, "ops_tenants.html", title="Tenants", tenants=found)


@ops.get("/portal/ops/drains", response_class=HTMLResponse)
def drains_page(request: Request) -> HTMLResponse:
    events = [event_view(e) for e in fleet.events(runtime(request).store, None, DRAIN_KINDS, 200)]
    return render(request, "ops_drains.html", title="Drains", events=events)


@ops.get("/portal/ops/capacity", response_class=HTMLResponse)
def capacity_page(request: Request) -> HTMLResponse:
    view = capacity_view(fleet.fleet_capacity(runtime(request).store))
    return render(request, "ops_capacity.html", title="Capacity", c=view)


@ops.get("/portal/ops/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> HTMLResponse:
    rt, who = runtime(request), principal(request)
    entries = [audit.audit_view(e) for e in audit.read(rt.store, who, limit=AUDIT_SHOWN)]
    return render(request, "ops_audit.html", title="Audit trail", entries=entries)
