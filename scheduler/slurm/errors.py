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


# The daemon each client talks to: an outage is named after the daemon that is down.
_DBD_TOOLS = frozenset({"sacctmgr", "sacct", "sreport"})
_DBD_WORDS = re.compile(r"database|slurmdbd|persist", re.IGNORECASE)
_CTLD_WORDS = re.compile(r"slurm controller|slurmctld", re.IGNORECASE)
_CLIENT_PREFIX = re.compile(r"^\S+: (?:error: |fatal: )?")
_PEER = re.compile(r"host:([^:\s]+):(\d+)")
# The phrases that say why, most telling first; failing those, the end of the last line
# that reads as an outage: sacctmgr prints "slurm_persist_conn_open_without_init: failed to
# open persistent connection to host:H:P: Connection refused" and "Sending PersistInit msg:
# Connection refused" per try, and sometimes "Problem talking to the database: ...".
_CAUSE_ORDER = (
    re.compile(r"problem talking to the database.*", re.IGNORECASE),
    re.compile(r"unable to contact slurm controller.*", re.IGNORECASE),
)


def daemon_of(tool: str, text: str = "") -> str:
    """The Slurm daemon a client's failure is about: slurmdbd or slurmctld."""
    if _CTLD_WORDS.search(text):
        return "slurmctld"
    if tool in _DBD_TOOLS or _DBD_WORDS.search(text):
        return "slurmdbd"
    return "slurmctld"


def unreachable_line(tool: str, text: str, limit: int = 160) -> str:
    """One human line for an outage: ``slurmdbd at 127.0.0.1:6819 is not answering
    (sacctmgr: Problem talking to the database: Connection refused)``."""
    lines = [_CLIENT_PREFIX.sub("", ln.strip()) for ln in text.splitlines() if ln.strip()]
    cause = _cause(lines)
    if len(cause) > limit:
        cause = cause[: limit - 1] + "\u2026"
    peer = _PEER.search(text)
    where = f" at {peer.group(1)}:{peer.group(2)}" if peer else ""
    return f"{daemon_of(tool, text)}{where} is not answering ({tool}: {cause})"


def _cause(lines: list[str]) -> str:
    for pattern in _CAUSE_ORDER:
        for ln in lines:
            match = pattern.search(ln)
            if match:
                return match.group(0)
    for ln in reversed(lines):
        if classify(ln) is Unreachable:
            return ln.rsplit(": ", 1)[-1]
    return lines[-1] if lines else "no answer"


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
