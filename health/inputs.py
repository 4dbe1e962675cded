"""What any input must be before it is believed: text, names, numbers and times.

Stdlib only, so a node (which installs ``health`` alone) and the control plane check the
same way; ``compute.validation`` builds its API and CLI types on these. Each limit lives
here once. They are sized to what the store's columns, Slurm and Kubernetes take, so a
value that passes can always be stored, encoded and shown.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta

# Node names: what both Slurm (a hostname) and Kubernetes (a DNS subdomain, 253 at most)
# accept; upper case because Slurm allows it and sites use it.
NODE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")
MAX_NODE_NAME = 253
# Check names and versions: store columns of 64 and 32 characters.
CHECK_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,63}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~:-]{0,31}")

# Free text an operator or a node gives.
MAX_REASON = 160  # + "computectl: operator: " stays within a drain reason's 200
MAX_EVIDENCE = 2000
MAX_VALUE_KEY = 64
MAX_VALUE_TEXT = 256
MAX_VALUES = 64
# GPU indices of one node: the store keeps them as one 128-character list.
MAX_GPU_INDEX = 31

# Numbers every store (SQLite, PostgreSQL bigint, JSON) and every reader (JavaScript's
# doubles aside) keeps exactly.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
FLOAT_MAX = 1e300

# A clock a few minutes ahead of ours is skew; further ahead is a wrong clock or a lie.
MAX_FUTURE = timedelta(minutes=5)

# Bidirectional embeddings, overrides and isolates: legal text, but they reorder what a
# terminal shows ("Trojan source"), so output escapes them like control characters.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class InputError(ValueError):
    """An input is not what it must be; the message names it and says why, in one line."""


def _bad_char(ch: str, multiline: bool) -> bool:
    if multiline and ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cc", "Cs")


def text(
    value: object, what: str, *, max_len: int, multiline: bool = False, empty: bool = True
) -> str:
    """Printable Unicode (any script, emoji, marks) without control characters or lone
    surrogates; ``multiline`` also allows newlines and tabs."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string")
    if not value and not empty:
        raise InputError(f"{what} must not be empty")
    if len(value) > max_len:
        raise InputError(f"{what} is {len(value)} characters; at most {max_len}")
    bad = next((ch for ch in value if _bad_char(ch, multiline)), None)
    if bad is not None:
        kind = "an invalid byte" if unicodedata.category(bad) == "Cs" else "a control character"
        raise InputError(f"{what} holds {kind} ({bad!a}); only printable text is allowed")
    return value


def name(value: object, what: str, pattern: re.Pattern[str], hint: str) -> str:
    """A name that must match ``pattern`` whole (no trailing newline slips through)."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        shown = ascii(value) if isinstance(value, str) and len(value) <= 80 else "it"
        raise InputError(f"{what} {shown} is not valid: {hint}")
    return value


def node_name(value: object, what: str = "node name") -> str:
    return name(
        value,
        what,
        NODE_NAME,
        f"1-{MAX_NODE_NAME} letters, digits, '.', '_' or '-', starting and ending with a "
        "letter or digit",
    )


def integer(value: object, what: str, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    """An integer, not a boolean, a float or a string that looks like one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be an integer")
    if not lo <= value <= hi:
        raise InputError(f"{what} must be between {lo} and {hi}")
    return value


def number(value: object, what: str, lo: float = -FLOAT_MAX, hi: float = FLOAT_MAX) -> float:
    """A finite number within [lo, hi]; integers are taken, booleans and strings are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{what} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{what} must be a finite number")
    if not lo <= value <= hi:
        raise InputError(f"{what} must be between {lo:g} and {hi:g}")
    return value


def timestamp(value: object, what: str) -> datetime:
    """An ISO 8601 time with a zone, as aware UTC."""
    if not isinstance(value, str) or len(value) > 64:
        raise InputError(f"{what} must be an ISO 8601 timestamp")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what} is not an ISO 8601 timestamp: {value!a}") from None
    if at.tzinfo is None:
        raise InputError(f"{what} must carry a time zone (e.g. 'Z' or '+00:00')")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{what} is out of range: {value!a}") from None


def recent(at: datetime, what: str, now: datetime, max_age: timedelta) -> datetime:
    """``at`` no older than ``max_age`` and no more than MAX_FUTURE ahead of ``now``."""
    if at > now + MAX_FUTURE:
        raise InputError(
            f"{what} {at.isoformat()} is in the future (server time {now.isoformat()})"
        )
    if at < now - max_age:
        raise InputError(
            f"{what} {at.isoformat()} is older than the {max_age.total_seconds() / 86400:g} "
            "days results are kept"
        )
    return at


def printable(value: str) -> str:
    """``value`` safe for a terminal: control characters, lone surrogates and bidi
    overrides are shown as escapes instead of acting (old rows and text from backends
    never passed our checks)."""
    if all(ch.isprintable() and ch not in _BIDI_CONTROLS for ch in value):
        return value
    out = []
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            out.append(ascii(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)
