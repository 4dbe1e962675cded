"""Errors a user must be told about. Each ends as one line (CLI) or a problem document (HTTP).

Exit codes of the CLI (documented in docs/exit-codes.md):
  0  done
  1  a bug (a traceback)
  2  the request was refused or invalid: nothing changed
  3  a backend (Slurm, Kubernetes, the store) could not be reached or failed: nothing changed
  4  partial: some of the work was done and recorded, some was not (the message says which)
  5  not acting: another control plane holds the lease (a cron sweep beside serve): not an error
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


class StaleWrite(ComputeError):
    """A node was written by someone else since it was read: nothing was written; read it
    again and redo the change (``Store.update_node`` does)."""

    http_status = 409
    code = "stale_write"
    exit_code = 3


class NotLeading(ComputeError):
    """This process may not act now (another control plane leads): nothing was done, and the
    decision is left to the one that acts."""

    http_status = 503
    code = "not_leading"
    exit_code = 3


class LeaseHeld(ComputeError):
    """Another process holds the lease: this one must not act. Nothing was done."""

    http_status = 409
    code = "lease_held"
    # Not a user error: a cron `computectl sweep` beside a running `serve` ends here by design.
    exit_code = 5
