"""A tenant's pages: overview, quota requests, API tokens, kubeconfig.

A change answers with the page that shows its result; a refusal is the API's problem
document (audited by the front door), which the page's script shows beside the form.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from compute.api.deps import actor, principal, runtime, wall_now
from compute.api.quota_routes import service as quota_service
from compute.auth import tokens as fmt
from compute.auth.principal import TENANT_ROLES, Role
from compute.errors import InvalidInput, NotFoundError
from compute.portal.render import render
from compute.portal.shaping import tenant_page
from compute.runtime import Runtime
from compute.services import billing, job_impact, tokens
from compute.services.quota_requests import request_view
from compute.services.usage import window
from compute.validation import TenantName

portal = APIRouter(include_in_schema=False)
Tenant = Annotated[TenantName, Path()]
TokenId = Annotated[int, Path(ge=1, le=2**62)]
# A portal form is a few short fields.
MAX_FORM = 8192
# A kubeconfig from the portal is short-lived: fetch another when it runs out.
KUBECONFIG_HOURS = 1.0
ENERGY_DAYS = 7
TOKEN_LIFETIMES = {"1d": "1 day", "7d": "7 days", "30d": "30 days", "90d": "90 days"}


async def read_form(request: Request) -> dict[str, str]:
    """The first value of each field of a urlencoded form (a larger body is refused)."""
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise InvalidInput(f"form: larger than {MAX_FORM} bytes")
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items() if v}


def _rt(request: Request) -> Runtime:
    return runtime(request)


@portal.get("/portal")
def landing(request: Request) -> Response:
    who = principal(request)
    if who.role in TENANT_ROLES:
        return RedirectResponse(f"/portal/t/{who.tenant}", status_code=303)
    return RedirectResponse("/portal/ops", status_code=303)


@portal.get("/portal/t/{tenant}", response_class=HTMLResponse)
def overview(request: Request, tenant: Tenant) -> HTMLResponse:
    rt = _rt(request)
    page = tenant_page(rt, tenant)
    # Energy from the store alone (the page reads the backends once already, for usage).
    since, until = window(rt.clock.now(), ENERGY_DAYS)
    energy = billing.as_dict(billing.tenant_energy(rt.store, tenant, since, until))
    # Jobs and pods infrastructure faults hit this UTC month, from the store alone.
    hits = job_impact.impact_view(job_impact.tenant_impact(rt.store, tenant, None, rt.clock.now()))
    return render(
        request, "tenant.html", title=f"{tenant} · overview", t=page, energy=energy, hits=hits
    )


# -- quota requests ---------------------------------------------------------------------------


def _requests_page(request: Request, tenant: str, flash: str = "") -> HTMLResponse:
    rt, who = _rt(request), principal(request)
    page = tenant_page(rt, tenant)
    found = [request_view(r) for r in quota_service(rt).visible(who, tenant)]
    pools = [q.pool for q in page.quotas] + [
        p.name
        for p in rt.settings.effective_pools
        if p.name in rt.backends.tenants_by_pool and p.name not in {q.pool for q in page.quotas}
    ]
    return render(
        request,
        "requests.html",
        title=f"{tenant} · quota requests",
        t=page,
        requests=found,
        pools=pools,
        may_ask=who.role in (Role.OPERATOR, Role.TENANT_ADMIN),
        flash=flash,
    )


@portal.get("/portal/t/{tenant}/requests", response_class=HTMLResponse)
def requests_page(request: Request, tenant: Tenant) -> HTMLResponse:
    return _requests_page(request, tenant)


@portal.post("/portal/t/{tenant}/requests", response_class=HTMLResponse)
async def ask(request: Request, tenant: Tenant) -> HTMLResponse:
    form = await read_form(request)
    gpus = form.get("gpus", "").strip()
    if not gpus.isdigit() or len(gpus) > 6:
        raise InvalidInput("gpus: a whole number of GPUs")

    def run() -> HTMLResponse:
        made = quota_service(_rt(request)).create(
            principal(request),
            actor(request),
            tenant,
            form.get("pool", ""),
            int(gpus),
            form.get("reason", ""),
        )
        return _requests_page(
            request, tenant, f"Request {made.id} filed: {made.gpus} GPUs in {made.pool}."
        )

    return await run_in_threadpool(run)


# -- kubeconfig -------------------------------------------------------------------------------


@portal.post("/portal/t/{tenant}/kubeconfig")
def kubeconfig(request: Request, tenant: Tenant) -> Response:
    text = _rt(request).tenants.kubeconfig(tenant, hours=KUBECONFIG_HOURS)
    return Response(
        text,
        media_type="application/yaml",
        headers={
            "Content-Disposition": f'attachment; filename="{tenant}-kubeconfig.yaml"',
            "Cache-Control": "no-store",
        },
    )


# -- API tokens ---------------------------------------------------------------------------------


def _tokens_page(
    request: Request, tenant: str, flash: str = "", shown_once: str = ""
) -> HTMLResponse:
    rt, who, now = _rt(request), principal(request), wall_now(request)
    if rt.store.tenant(tenant) is None:
        raise NotFoundError(f"unknown tenant {tenant!r}")
    mine = [tokens.token_view(t, now) for t in tokens.visible(rt.store, who) if t.tenant == tenant]
    return render(
        request,
        "tokens.html",
        title=f"{tenant} · API tokens",
        tenant=tenant,
        tokens=mine,
        lifetimes=TOKEN_LIFETIMES,
        shown_once=shown_once,
        flash=flash,
    )


@portal.get("/portal/t/{tenant}/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, tenant: Tenant) -> HTMLResponse:
    return _tokens_page(request, tenant)


@portal.post("/portal/t/{tenant}/tokens", response_class=HTMLResponse)
async def create_token(request: Request, tenant: Tenant) -> HTMLResponse:
    form = await read_form(request)
    role = form.get("role", "")
    if role not in (Role.TENANT_ADMIN.value, Role.TENANT_MEMBER.value):
        raise InvalidInput("role: tenant-admin or tenant-member")
    expires = form.get("expires", "30d")
    if expires not in TOKEN_LIFETIMES:
        raise InvalidInput(f"expires: one of {', '.join(TOKEN_LIFETIMES)}")
    lifetime: timedelta = fmt.parse_lifetime(expires)

    def run() -> HTMLResponse:
        rt = _rt(request)
        created = tokens.create(
            rt.store,
            principal(request),
            role=role,
            tenant=tenant,
            lifetime=lifetime,
            name=form.get("name", "").strip(),
            now=wall_now(request),
            at=rt.clock.now(),
        )
        return _tokens_page(
            request,
            tenant,
            f"Token {created.record.id} created. Copy it now: it is not shown again.",
            shown_once=created.plaintext,
        )

    return await run_in_threadpool(run)


@portal.post("/portal/t/{tenant}/tokens/{id}/revoke", response_class=HTMLResponse)
def revoke_token(request: Request, tenant: Tenant, id: TokenId) -> HTMLResponse:
    rt, who = _rt(request), principal(request)
    found = [t for t in tokens.visible(rt.store, who) if t.id == id and t.tenant == tenant]
    if not found:
        # Another tenant's token is as unknown here as one that does not exist.
        raise NotFoundError(f"no token {id} of {tenant}")
    tokens.revoke(rt.store, who, id, now=wall_now(request), at=rt.clock.now())
    return _tokens_page(request, tenant, f"Token {id} revoked; its sessions ended.")
