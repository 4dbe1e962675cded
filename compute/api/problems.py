"""Errors as RFC 9457 problem documents, and the request-body limit that runs before parsing.

Every refusal is a 4xx with ``application/problem+json``: ``type``, ``title``, ``status``,
``detail`` and our ``code`` (the same codes as compute.errors). Nothing a client sent is
echoed raw: details pass through ``printable``, so a document can always be encoded.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from compute.errors import ComputeError
from compute.validation import MAX_BODY_BYTES, first_error
from health.inputs import printable

log = logging.getLogger("computectl.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Codes for what HTTP itself refuses, beside compute.errors' own.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="A URI naming the kind of problem ('about:blank': see title).")
    title: str = Field(description="The HTTP status's phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, in one line.")
    code: str = Field(description="Machine-readable kind: invalid_input, not_found, refused, ...")


def _described(status: int, what: str) -> dict[str, Any]:
    return {
        "description": what,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    }


# The problem responses every route documents (OpenAPI), so clients know their shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described(400, "Malformed request (e.g. a body that is not JSON)"),
    401: _described(401, "No credential, or one not valid (unknown, expired, revoked)"),
    403: _described(403, "This credential's role or tenant may not do this; nothing changed"),
    404: _described(404, "Unknown node, pool or tenant"),
    409: _described(409, "Refused in the current state; nothing changed"),
    413: _described(413, f"Request body larger than {MAX_BODY_BYTES} bytes"),
    422: _described(422, "Invalid input; nothing changed"),
    429: _described(429, "Too many failed logins from this address; see Retry-After"),
    500: _described(500, "A bug: reported in the server's log"),
    502: _described(502, "A workload manager failed (or only part of the work was done)"),
    503: _described(503, "The store refused the write; nothing changed"),
}


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = Problem(
        type="about:blank", title=title, status=status, detail=printable(detail), code=code
    )
    return JSONResponse(
        body.model_dump(), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ComputeError)
    async def _compute_error(_: Request, exc: ComputeError) -> JSONResponse:
        # 401 says how to authenticate (WWW-Authenticate), 429 when to try again.
        headers: dict[str, str] | None = getattr(exc, "headers", None)
        return problem(exc.http_status, exc.code, str(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        return problem(422, "invalid_input", first_error(errors) if errors else "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(500, "internal_error", "internal error; the server's log has the details")


class _TooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes an HTTPException from there on untouched
    (any other error while reading a body it turns into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes; nothing changed")


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413 before anything reads it whole:
    by its Content-Length, or, for a chunked body, as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, "too_large", f"request body larger than {self.limit} bytes; nothing changed"
        )
        await response(scope, receive, send)
