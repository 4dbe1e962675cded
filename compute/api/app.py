"""The FastAPI application: routers, error translation, /healthz, /metrics and the page."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from compute.api.routes import api
from compute.errors import ComputeError
from compute.metrics import metrics_registry
from compute.runtime import Loop, Runtime


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


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

    @app.exception_handler(ComputeError)
    async def _compute_error(_: Request, exc: ComputeError) -> JSONResponse:
        return _error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(
            422, "invalid_input", f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        last = rt.store.meta("last_sweep")
        return {
            "status": "ok",
            "last_sweep": last,
            "loop_error": loop.last_error if loop is not None else None,
        }

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    return app
