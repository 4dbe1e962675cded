"""The authorization rows of capacity planning: forecast, headroom, what-if
(merged into compute/auth/policy.py's table)."""

from __future__ import annotations

from compute.auth.policy import Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {}
