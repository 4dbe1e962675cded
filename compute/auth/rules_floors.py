"""The authorization rows of learned burn-in floors (merged into compute/auth/policy.py's
table)."""

from __future__ import annotations

from compute.auth.policy import READERS, Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    # The fleet's burn-in figures, as the fleet's other views: operators and viewers.
    return {("GET", f"{v1}/floors"): Rule(READERS)}
