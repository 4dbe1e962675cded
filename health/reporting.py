"""Talking to the control plane from a node: its inventory of the node, and the report.

Both requests carry the node's own credential (`health.node_token`) when it has one: with
it the control plane lets the node read its own record and report for itself, nothing else.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from health.result import CheckResult
from health.telemetry import NodeExpectation


class ReportError(Exception):
    """The control plane did not take the report."""


def _request(endpoint: str, token: str | None, body: bytes | None = None) -> urllib.request.Request:
    req = urllib.request.Request(endpoint, data=body, method="GET" if body is None else "POST")
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    return req


def report(
    url: str,
    node: str,
    results: Sequence[CheckResult],
    token: str | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """POST the results to the control plane's /api/v1/nodes/{node}/health."""
    endpoint = f"{url.rstrip('/')}/api/v1/nodes/{node}/health"
    body = json.dumps({"results": [r.to_dict() for r in results]}).encode()
    try:
        with urllib.request.urlopen(_request(endpoint, token, body), timeout=timeout) as resp:
            answer: dict[str, Any] = json.loads(resp.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise ReportError(f"{endpoint}: HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReportError(f"{endpoint}: {reason}") from None


def fetch_expectation(
    url: str, node: str, token: str | None = None, timeout: float = 10.0
) -> NodeExpectation | None:
    """What the control plane's inventory says this node has (None when it does not know,
    or does not tell this credential)."""
    endpoint = f"{url.rstrip('/')}/api/v1/nodes/{node}"
    try:
        with urllib.request.urlopen(_request(endpoint, token), timeout=timeout) as resp:
            raw = json.loads(resp.read())
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        return None
    try:
        return NodeExpectation(
            gpu_count=int(raw["gpu_count"]),
            gpu_model=str(raw["gpu_model"]),
            gpu_uuids=tuple(g["uuid"] for g in raw.get("gpus", [])),
        )
    except (KeyError, TypeError, ValueError):
        return None
