"""The FastAPI application: routers, problem documents, the body limit, /healthz, /metrics
and the page."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from compute.api.problems import BodyLimit, install_problem_handlers
from compute.api.routes import api
from compute.loop import Loop
from compute.metrics import metrics_registry
from compute.runtime import Runtime
from compute.services.readiness import readiness


def create_app(rt: Runtime, loop: Loop | None = None) -> FastAPI:
    app = FastAPI(
        title="computectl",
        version="0.1.0",
        description="Control plane of a managed GPU cloud: nodes, health, remediation, capacity.",
    )
    app.state.runtime = rt
    app.state.loop = loop
    registry = metrics_registry(rt, loop)
    page = resources.files("compute").joinpath("web/index.html").read_text()

    install_problem_handlers(app)
    app.add_middleware(BodyLimit)
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
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
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    return app
