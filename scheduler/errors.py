"""The backends' own errors: whatever a backend's tool or client raises is translated here."""

from __future__ import annotations


class SchedulerError(Exception):
    """Base of every error a workload manager backend raises."""


class Unreachable(SchedulerError):
    """The controller or API server does not answer."""


class PermissionDenied(SchedulerError):
    """The backend refused the credentials computectl acts with."""


class InvalidRequest(SchedulerError):
    """The backend rejected the request as malformed or impossible."""


class NotFound(SchedulerError):
    """The node (or other object) does not exist in the backend."""


class Conflict(SchedulerError):
    """The object changed underneath the request; retrying may succeed."""


class TooManyRequests(SchedulerError):
    """The backend asked to slow down (HTTP 429) and kept asking after bounded retries."""
