"""Talking to the control plane from a node: its inventory of the node, and the report.

Both requests carry the node's own credential (`health.node_token`) when it has one: with
it the control plane lets the node read its own record and report for itself, nothing else.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from health.checks.sdc import SdcReference
from health.result import CheckResult
from health.telemetry import NodeExpectation

# The control plane's answer is read up to this (a few nodes, a few caps).
MAX_ANSWER_BYTES = 4 * 1024 * 1024


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
    return _post(f"{url.rstrip('/')}/api/v1/nodes/{node}/health",
                 {"results": [r.to_dict() for r in results]}, token, timeout)  # fmt: skip


def report_power(
    url: str, node: str, body: Mapping[str, Any], token: str | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """POST the node's power (health/power.py) to /api/v1/nodes/{node}/power; the answer
    names the caps to apply or restore."""
    return _post(f"{url.rstrip('/')}/api/v1/nodes/{node}/power", body, token, timeout)


def _post(endpoint: str, payload: Any, token: str | None, timeout: float) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    try:
        with urllib.request.urlopen(_request(endpoint, token, body), timeout=timeout) as resp:
            answer = json.loads(resp.read(MAX_ANSWER_BYTES) or b"{}")
    except ValueError:
        raise ReportError(f"{endpoint}: the answer is not JSON") from None
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise ReportError(f"{endpoint}: HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReportError(f"{endpoint}: {reason}") from None
    if not isinstance(answer, dict):
        raise ReportError(f"{endpoint}: the answer is not a JSON object")
    return answer


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


_SHA256 = re.compile(r"[0-9a-f]{64}")


def fetch_sdc_reference(
    url: str, model: str, stack: str, token: str | None = None, timeout: float = 10.0
) -> SdcReference | None:
    """The fleet's SDC reference for (model, stack) from /api/v1/sdc/reference; None where
    the fleet has none yet. LookupError when it could not be asked or answered oddly: the
    check then skips this comparison (a control plane out of reach is no evidence)."""
    query = urllib.parse.urlencode({"model": model, "stack": stack})
    endpoint = f"{url.rstrip('/')}/api/v1/sdc/reference?{query}"
    try:
        with urllib.request.urlopen(_request(endpoint, token), timeout=timeout) as resp:
            raw = json.loads(resp.read(MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        raise LookupError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise LookupError(str(getattr(exc, "reason", exc))[:200]) from None
    if not isinstance(raw, dict) or "checksum" not in raw:
        raise LookupError("the answer is not an SDC reference")
    checksum, nodes = raw["checksum"], raw.get("nodes")
    if checksum is None:
        return None
    if not (isinstance(checksum, str) and _SHA256.fullmatch(checksum)) or not (
        isinstance(nodes, int) and not isinstance(nodes, bool) and nodes >= 1
    ):
        raise LookupError("the answer is not an SDC reference")
    return SdcReference(checksum=checksum, nodes=nodes)


def fetch_learned_floors(
    url: str, model: str, stack: str, token: str | None = None, timeout: float = 10.0
) -> object:
    """The control plane's learned floors for (model, stack) from /api/v1/floors/learned, as
    answered (health.floor_judging.parse_node_view checks it). LookupError when it could not
    be asked: the node then judges with its fixed floors."""
    query = urllib.parse.urlencode({"model": model, "stack": stack})
    endpoint = f"{url.rstrip('/')}/api/v1/floors/learned?{query}"
    try:
        with urllib.request.urlopen(_request(endpoint, token), timeout=timeout) as resp:
            return json.loads(resp.read(MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        raise LookupError(f"HTTP {exc.code}") from None
    except ValueError:
        raise LookupError("the answer is not JSON") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise LookupError(str(getattr(exc, "reason", exc))[:200]) from None
