"""Slurm hostlists (``gpu-[001-003,007],cpu-1``) → node names."""

from __future__ import annotations

import re

_BRACKET = re.compile(r"^(.*?)\[([^\]]+)\](.*)$")


def expand(hostlist: str, limit: int | None = None) -> list[str]:
    """The names, in order. ValueError for a range that is not one (``gpu-[a-b]``), or
    (with ``limit``) for more names than that, found before any is made."""
    out: list[str] = []
    for item in _split_top(hostlist):
        # Counting checks every range first, so nothing is made from a malformed one.
        if _count(item) + len(out) > (limit if limit is not None else float("inf")):
            raise ValueError(f"{hostlist!r} names more than {limit} nodes")
        out += _expand_one(item)
    return out


def _count(item: str) -> int:
    m = _BRACKET.match(item)
    if not m:
        return 1
    prefix, ranges, suffix = m.groups()
    per = _count(f"{prefix}0{suffix}")
    total = 0
    for r in ranges.split(","):
        lo, _, hi = r.partition("-")
        if not lo.isdigit() or not (hi or lo).isdigit():
            raise ValueError(f"{r!r} is not a range of numbers (like 001-016)")
        if int(hi or lo) < int(lo):
            raise ValueError(f"{r!r} runs backwards (like 016-001); write it low-high")
        total += (int(hi or lo) - int(lo) + 1) * per
    return total


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets."""
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    items.append(cur)
    return [i.strip() for i in items if i.strip()]


def _expand_one(item: str) -> list[str]:
    m = _BRACKET.match(item)
    if not m:
        return [item]
    prefix, ranges, suffix = m.groups()
    out = []
    for r in ranges.split(","):
        lo, _, hi = r.partition("-")
        width = len(lo)
        for i in range(int(lo), int(hi or lo) + 1):
            # The suffix may hold another bracket (gpu-[1-2]-[a-b] is rare, but legal).
            out += _expand_one(f"{prefix}{i:0{width}d}{suffix}")
    return out
