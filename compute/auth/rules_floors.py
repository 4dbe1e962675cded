"""The authorization rows of learned burn-in floors (merged into compute/auth/policy.py's
table)."""

from __future__ import annotations

from compute.auth.policy import READERS, Rule
from compute.auth.principal import Role


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {
        # The fleet's burn-in figures, as the fleet's other views: operators and viewers.
        ("GET", f"{v1}/floors"): Rule(READERS),
        # Nodes ask for theirs during burn-in (their own credential): floors per model and
        # stack, no node, tenant or figure of anyone's in them.
        ("GET", f"{v1}/floors/learned"): Rule(READERS | {Role.NODE}),
    }
