"""Errors a user can cause. Each ends as one line: CLI exit code 2, HTTP 4xx with a JSON body."""

from __future__ import annotations


class ComputeError(Exception):
    """Base of the errors a user can cause or must be told about."""

    http_status = 400
    code = "bad_request"


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


class Unauthorized(ComputeError):
    http_status = 401
    code = "unauthorized"
