"""Slurm hostlists (``gpu-[001-003,007],cpu-1``) → node names."""

from __future__ import annotations

import re

_BRACKET = re.compile(r"^(.*?)\[([^\]]+)\](.*)$")


def expand(hostlist: str) -> list[str]:
    out: list[str] = []
    for item in _split_top(hostlist):
        out += _expand_one(item)
    return out


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
