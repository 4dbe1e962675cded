"""What the API server answers, read strictly: list pages, and its errors as
`scheduler.errors` types (pure functions, so hypothesis can drive them).
"""

from __future__ import annotations

import json
from typing import Any

from scheduler.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    SchedulerError,
    Unreachable,
)

# 429s (API priority and fairness, or an eviction the API server asks to retry)
# are waited out with Retry-After (bounded) or a doubling backoff.
_BACKOFF_SECONDS = 0.2
_MAX_WAIT_SECONDS = 5.0
# The Eviction API answers 429 when a PodDisruptionBudget forbids the eviction
# *now*; that is a refusal to report, not throttling to wait out.
_PDB_WORDS = ("disruption budget", "disruptionbudget")


class Refused(SchedulerError):
    """An HTTP 429, before it is known whether to wait, report or raise it."""

    def __init__(self, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.message = message
        self.wait = wait


class Expired(SchedulerError):
    """HTTP 410: a list's continue token outlived what the API server keeps; list again."""


def list_page(what: str, page: Any) -> tuple[list[dict[str, Any]], str]:
    """One page of a list: (its items, the continue token, "" on the last page).

    Strict, because a list that comes back short reads as objects that are gone: anything
    but a list object whose items all are objects with a name is an error, never fewer items.
    """
    if not isinstance(page, dict):
        raise SchedulerError(f"{what}: the API server sent {type(page).__name__}, not a list")
    raw = page.get("items")
    if raw is None and "items" not in page:
        raise SchedulerError(f"{what}: the API server's answer has no items")
    items = raw if raw is not None else []  # Go's empty slice can come as null
    if not isinstance(items, list):
        raise SchedulerError(f"{what}: items is {type(items).__name__}, not a list")
    for item in items:
        m = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"]:
            raise SchedulerError(f"{what}: the API server sent an item without a name")
    lm = page.get("metadata")
    if lm is None:
        lm = {}
    if not isinstance(lm, dict):
        raise SchedulerError(f"{what}: the list's metadata is not an object")
    cont = lm.get("continue")
    if cont is None:
        cont = ""
    if not isinstance(cont, str):
        raise SchedulerError(f"{what}: the continue token is not a string")
    return items, cont


def translate(what: str, exc: Any) -> SchedulerError:
    """An ApiException → the matching SchedulerError (429 → `Refused`, for the retry loop)."""
    status = int(getattr(exc, "status", 0) or 0)
    message = status_message(exc)
    if status == 429:
        return Refused(message, retry_after(exc))
    kinds: dict[int, type[SchedulerError]] = {
        400: InvalidRequest,
        401: PermissionDenied,
        403: PermissionDenied,
        404: NotFound,
        409: Conflict,
        410: Expired,
        422: InvalidRequest,
    }
    if status == 0:
        return Unreachable(f"{what}: {message}")
    return kinds.get(status, SchedulerError)(f"{what}: {message} (HTTP {status})")


def status_message(exc: Any) -> str:
    """The message of the Status object the API server answers errors with."""
    body = getattr(exc, "body", None)
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            return " ".join(str(body).split())[:300]
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return str(getattr(exc, "reason", "") or "no message")


def retry_after(exc: Any) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return min(float(str(headers.get("Retry-After"))), _MAX_WAIT_SECONDS)
    except (TypeError, ValueError):
        return None


def backoff(attempt: int) -> float:
    return float(min(_BACKOFF_SECONDS * 2**attempt, _MAX_WAIT_SECONDS))


def is_pdb_refusal(message: str) -> bool:
    return any(w in message.lower() for w in _PDB_WORDS)


def urllib3_cause(exc: Exception, timeout_seconds: float) -> str:
    # MaxRetryError hides the useful part ("Connection refused") in .reason.
    reason = getattr(exc, "reason", None)
    text = " ".join(str(reason if reason is not None else exc).split())
    if "refused" in text.lower():
        return "connection refused (is the API server up?)"
    if "remotedisconnected" in text.lower() or "connection aborted" in text.lower():
        # A pooled connection of an API server that has just gone away.
        return "connection closed by the server (is the API server up?)"
    if "timed out" in text.lower():
        return f"no answer within {timeout_seconds:g} s"
    return text


def close_pool(api: Any) -> None:
    """Close a client's pooled connections (after the server went away they are dead), so
    their sockets are closed now rather than left to the garbage collector."""
    pool = getattr(
        getattr(getattr(api, "api_client", None), "rest_client", None), "pool_manager", None
    )
    if pool is not None:
        pool.clear()
