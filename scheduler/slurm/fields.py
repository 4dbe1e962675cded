"""sacctmgr's field values as text: TRES lists and wall times, read and written (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_UNLIMITED = ("", "UNLIMITED", "INFINITE", "Partition_Limit")
_WALL = re.compile(r"(?:(\d{1,6})-)?(\d{1,6})(?::(\d{1,2}))?(?::(\d{1,2}))?")


def parse_tres(text: str) -> dict[str, str]:
    """``gres/gpu:h100=16,cpu=4`` → {"gres/gpu:h100": "16", "cpu": "4"}."""
    out = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key:
            out[key] = value
    return out


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
