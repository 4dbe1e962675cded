"""The authorization rows of capacity planning: forecast, headroom, what-if
(merged into compute/auth/policy.py's table)."""

from __future__ import annotations

from compute.auth.policy import READERS, Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    # The fleet's figures, as GET /capacity: operators and viewers, no tenant.
    return {("GET", f"{v1}/capacity/forecast"): Rule(READERS)}
