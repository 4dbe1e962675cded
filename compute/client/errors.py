"""A remote control plane's refusals as the same errors (and exit codes) as local ones.

The API answers a refusal with an RFC 9457 problem document whose ``code`` is the
``ComputeError`` subclass's own; that code picks the class again here, so ``computectl
--server URL nodes drain gpu-999`` ends with the same line and exit code as on the data
directory. Anything else the server sends is hostile until shown otherwise: one line.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

from compute.errors import ComputeError, NotFoundError, RefusedError, Unauthorized

# What an error line quotes of a server's answer at most.
MAX_DETAIL = 400


class Unreachable(ComputeError):
    """The server could not be reached, or broke off: nothing is known to have changed."""

    http_status = 502
    code = "unreachable"
    exit_code = 3


class BadAnswer(ComputeError):
    """The server answered something that is not what its API says it answers."""

    http_status = 502
    code = "bad_answer"
    exit_code = 3


class ServerFailed(ComputeError):
    """The server failed (a 5xx without a code computectl knows)."""

    http_status = 502
    code = "server_error"
    exit_code = 3


class NotThroughApi(ComputeError):
    """A command that works on the data directory only, asked to use a server."""

    code = "local_only"


def _classes(base: type[ComputeError]) -> dict[str, type[ComputeError]]:
    found: dict[str, type[ComputeError]] = {}
    for cls in base.__subclasses__():
        found.setdefault(cls.code, cls)
        for code, sub in _classes(cls).items():
            found.setdefault(code, sub)
    return found


def error_class(code: str) -> type[ComputeError] | None:
    """The ComputeError subclass whose ``code`` this is (computectl's own errors only)."""
    if not code.isascii() or not code.replace("_", "").isalnum():
        return None
    cls = _classes(ComputeError).get(code)
    # Errors of this module stand for what happened on the way, never for a server's code.
    return None if cls is None or cls.__module__ == __name__ else cls


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def problem_error(status: int, body: bytes, what: str) -> ComputeError:
    """The error a refusal stands for. ``what`` names the request ("GET /api/v1/nodes")."""
    doc: Any = None
    with contextlib.suppress(UnicodeDecodeError, ValueError, RecursionError):
        doc = json.loads(body.decode("utf-8"))
    detail = doc.get("detail") if isinstance(doc, dict) else None
    code = doc.get("code") if isinstance(doc, dict) else None
    if not isinstance(detail, str) or not detail.strip():
        return _by_status(status, f"the server answered {status} to {what}")
    if status in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
        # The router's own answer, not a refusal of the thing named: the route is missing.
        return NotThroughApi(
            f"the server has no {what} (a control plane older than this computectl?)"
        )
    cls = error_class(code) if isinstance(code, str) else None
    detail = _short(detail)
    if cls is None:
        return _by_status(status, detail)
    if cls is Unauthorized or status == 401:
        return Unauthorized(
            f"{detail} (give a token: --token, COMPUTECTL_TOKEN, or a context's token_file)"
        )
    return cls(detail)


def _by_status(status: int, detail: str) -> ComputeError:
    if status == 401:
        return Unauthorized(_short(detail))
    if status == 404:
        return NotFoundError(_short(detail))
    if status == 409:
        return RefusedError(_short(detail))
    if 400 <= status < 500:
        return ComputeError(_short(detail))
    return ServerFailed(_short(detail))


def unreachable_reason(reason: object) -> str:
    """Why a server could not be reached, in a few words (the OS's, not a traceback's)."""
    import ssl  # here: every command loads this module, few meet a certificate

    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({reason.verify_message})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return " ".join(str(reason).split())[:200] or type(reason).__name__
