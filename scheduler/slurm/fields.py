"""sacctmgr's field values as text: TRES lists and wall times, read and written (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

_UNLIMITED = ("", "UNLIMITED", "INFINITE", "Partition_Limit")
_MEM = re.compile(r"(\d{1,20}(?:\.\d{1,6})?)([KMGTP]?)")
_MEM_UNITS = {"K": -1, "": 0, "M": 0, "G": 1, "T": 2, "P": 3}  # powers of 1024 from MB
_WALL = re.compile(r"(?:(\d{1,6})-)?(\d{1,6})(?::(\d{1,2}))?(?::(\d{1,2}))?")


def parse_tres(text: str) -> dict[str, str]:
    """``gres/gpu:h100=16,cpu=4`` → {"gres/gpu:h100": "16", "cpu": "4"}."""
    out = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key:
            out[key] = value
    return out


def memory_mb(text: str) -> str:
    """sacctmgr's memory TRES value (MB, printed in the largest unit that keeps it exact,
    e.g. 64000 → ``62.50G``, 24000 → ``24000M``) → whole MB as text ("64000").

    Text that is no such value is returned as it is (it then reads as drift)."""
    match = _MEM.fullmatch(text.strip())
    if match is None:
        return text
    number, unit = match.groups()
    try:
        mb = Decimal(number) * Decimal(1024) ** _MEM_UNITS[unit]
    except InvalidOperation:
        return text
    return str(int(mb)) if mb == mb.to_integral_value() else text


def format_tres(tres: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tres.items()))


def parse_wall(text: str) -> int | None:
    """sacctmgr's MaxWall (``[days-]hh:mm:ss``, ``mm:ss``, empty) → minutes; None: unlimited
    (or text that is no MaxWall at all, which then reads as drift if the spec sets one)."""
    match = _WALL.fullmatch(text.strip())
    if match is None:
        return None
    days, *clock = match.groups()
    parts = [int(p) for p in clock if p is not None]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, sec = parts
    return (int(days or 0) * 24 + h) * 60 + m + (1 if sec else 0)


def format_wall(minutes: int) -> str:
    """Minutes as sacctmgr prints a MaxWall: ``01:00:00``, ``2-00:00:00``."""
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock
