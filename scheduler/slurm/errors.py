"""Slurm's error messages → the backend's own error types.

The Slurm CLIs report failures as free text on stderr (and, for the
``--json`` dumpers of 22.05, as an ``errors`` list with exit status 0), so
the type of a failure can only be told from its words.  The patterns are the
messages of Slurm 22.05's clients; unknown text stays a plain SchedulerError.
"""

from __future__ import annotations

import re

from scheduler.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    SchedulerError,
    Unreachable,
)

# First match wins: "Unable to contact slurm controller (connect failure)" must
# read as unreachable before anything else in the same text is looked at.
_PATTERNS: tuple[tuple[re.Pattern[str], type[SchedulerError]], ...] = (
    (
        re.compile(
            r"unable to contact slurm controller|connection refused|connect failure"
            r"|socket timed out|timed out|zero bytes were transmitted or received"
            r"|communication connection failure|slurm_persist_conn_open",
            re.IGNORECASE,
        ),
        Unreachable,
    ),
    (
        re.compile(
            r"access/permission denied|permission denied|invalid user id"
            r"|authentication error|user not found on host|not authorized",
            re.IGNORECASE,
        ),
        PermissionDenied,
    ),
    (re.compile(r"invalid node name|node .* not found|invalid job id", re.IGNORECASE), NotFound),
    (
        re.compile(
            r"invalid node state|invalid input|request denied|invalid argument|invalid.*specified",
            re.IGNORECASE,
        ),
        InvalidRequest,
    ),
)


def classify(text: str) -> type[SchedulerError]:
    """The error type that fits a Slurm client's message."""
    for pattern, kind in _PATTERNS:
        if pattern.search(text):
            return kind
    return SchedulerError


def one_line(text: str, limit: int = 300) -> str:
    """Slurm's multi-line complaints, squeezed into one line for an error message."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # scontrol repeats "If munged is up, restart with --num-threads=10" before the
    # real cause; keep every line but drop exact repeats.
    seen: list[str] = []
    for ln in lines:
        if ln not in seen:
            seen.append(ln)
    joined = "; ".join(seen)
    return joined if len(joined) <= limit else joined[: limit - 1] + "\u2026"
