"""The FastAPI application: the front door, routers, problem documents, the body limit,
/healthz, /readyz, /metrics, the page and its login."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from compute.api.acceptance_routes import acceptance_api
from compute.api.access import access
from compute.api.auth import Door, FailureLimiter, Verifier, front_door
from compute.api.capacity_routes import capacity_api
from compute.api.deps import principal
from compute.api.docs_assets import docs_assets
from compute.api.floors_routes import floors_api
from compute.api.job_impact_routes import job_impact_api
from compute.api.lemon_routes import lemon_api
from compute.api.oidc_routes import build_oidc_client, oidc_pages
from compute.api.pages import pages
from compute.api.power_routes import power_api
from compute.api.problems import BodyLimit, install_problem_handlers
from compute.api.quota_routes import quota
from compute.api.routes import api
from compute.api.sdc_routes import sdc_api
from compute.api.tenant_batch_routes import tenant_batch_api
from compute.api.usage_routes import usage_api
from compute.auth.policy import Policy
from compute.auth.principal import TENANT_ROLES
from compute.loop import Loop
from compute.metrics import metrics_registry
from compute.portal.ops_pages import ops
from compute.portal.render import build_templates
from compute.portal.tenant_pages import portal
from compute.runtime import Runtime
from compute.services.readiness import readiness


def create_app(
    rt: Runtime,
    loop: Loop | None = None,
    *,
    verifiers: Sequence[Verifier] = (),
    limiter: FailureLimiter | None = None,
) -> FastAPI:
    """``verifiers`` accept credentials other than computectl tokens (a node's Kubernetes
    ServiceAccount token); ``limiter`` counts failed logins per source (default: 20 a
    minute)."""
    app = FastAPI(
        title="computectl",
        version="0.1.0",
        description="Control plane of a managed GPU cloud: nodes, health, remediation, capacity. "
        "Every route but /healthz needs 'Authorization: Bearer <token>' (or a browser session "
        "from /login).",
        # Served below as routes of their own, so the front door guards them too.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(front_door)],
    )
    app.state.runtime = rt
    app.state.loop = loop
    app.state.door = Door(
        store=rt.store,
        clock=rt.clock,
        policy=Policy(metrics_public=rt.settings.server.metrics_public),
        limiter=limiter or FailureLimiter(),
        verifiers=list(verifiers),
    )
    app.state.oidc = build_oidc_client(rt.settings.oidc)
    app.state.portal = build_templates()
    registry = metrics_registry(rt, loop)
    page = resources.files("compute").joinpath("web/index.html").read_text()

    install_problem_handlers(app)
    app.add_middleware(BodyLimit)
    app.include_router(api)
    app.include_router(usage_api)
    app.include_router(power_api)
    app.include_router(capacity_api)
    app.include_router(floors_api)
    app.include_router(job_impact_api)
    app.include_router(sdc_api)
    app.include_router(lemon_api)
    app.include_router(acceptance_api)
    app.include_router(tenant_batch_api)
    app.include_router(access)
    app.include_router(quota)
    app.include_router(pages)
    app.include_router(oidc_pages)
    app.include_router(portal)
    app.include_router(ops)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        """Liveness: the process answers. Whether remediation works is /readyz's question."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness: a sweep that reached every backend finished recently (503 if not)."""
        r = readiness(
            rt.store,
            loop.sweep_interval if loop is not None else rt.settings.sweep.interval_seconds,
            loop_error=loop.last_error if loop is not None else None,
            started_wall=loop.started_wall if loop is not None else None,
        )
        content = r.as_dict()
        if loop is not None and loop.leadership is not None:
            # A follower is ready too: it serves the API and reads the leader's sweeps.
            state = loop.leadership.state()
            content["leadership"] = {
                "holder": state.holder,
                "leading": state.leading,
                "epoch": state.epoch,
                "leader": state.leader,
                "leader_until": state.leader_until.isoformat() if state.leader_until else None,
            }
        return JSONResponse(status_code=200 if r.ready else 503, content=content)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def index(request: Request) -> Response:
        # The fleet overview is the operators'; a tenant's people land on their portal.
        if principal(request).role in TENANT_ROLES:
            return RedirectResponse("/portal", status_code=303)
        return HTMLResponse(page)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        # Swagger UI from the installed package, not a CDN: a datacenter's control plane
        # may not reach the internet, and a page that runs a third party's script with an
        # operator's session is one more thing to trust.
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="computectl API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        found = docs_assets(name)
        if found is None:
            return JSONResponse({"title": "Not Found", "status": 404}, status_code=404)
        body, media_type = found
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    return app
