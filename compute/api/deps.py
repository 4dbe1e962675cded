"""Request-scoped access to the runtime, and the optional bearer-token guard."""

from __future__ import annotations

import hmac

from fastapi import Request

from compute.errors import Unauthorized
from compute.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def require_writer(request: Request) -> str:
    """Guard for requests that change state; returns the actor to record."""
    rt = runtime(request)
    token = rt.settings.server.api_token
    if token:
        got = request.headers.get("authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
            raise Unauthorized(
                "this request changes state and needs 'Authorization: Bearer <api_token>'"
            )
    client = request.client.host if request.client else "unknown"
    return f"api:{client}"
