"""Errors a user must be told about. Each ends as one line (CLI) or a problem document (HTTP).

Exit codes of the CLI (documented in docs/exit-codes.md):
  0  done
  1  a bug (a traceback)
  2  the request was refused or invalid: nothing changed
  3  a backend (Slurm, Kubernetes, the store) could not be reached or failed: nothing changed
  4  partial: some of the work was done and recorded, some was not (the message says which)
"""

from __future__ import annotations


class ComputeError(Exception):
    """Base of the errors a user can cause or must be told about."""

    http_status = 400
    code = "bad_request"
    exit_code = 2


class ConfigError(ComputeError):
    code = "config_error"


class NotFoundError(ComputeError):
    http_status = 404
    code = "not_found"


class RefusedError(ComputeError):
    """The action is understood but not allowed in the current state; the message says why."""

    http_status = 409
    code = "refused"


class InvalidInput(ComputeError):
    http_status = 422
    code = "invalid_input"


class BackendError(ComputeError):
    """A workload manager failed; nothing was recorded as done."""

    http_status = 502
    code = "backend_error"
    exit_code = 3


class PartialError(ComputeError):
    """Part of the work was done (and recorded, audit included), part failed; retrying converges."""

    http_status = 502
    code = "partial"
    exit_code = 4


class Unauthorized(ComputeError):
    http_status = 401
    code = "unauthorized"


class StoreFailure(ComputeError):
    """The store refused a write (it is down, or the data cannot be stored)."""

    http_status = 503
    code = "store_error"
    exit_code = 3
