"""The authorization rows of power: readings, caps and their reverts
(merged into compute/auth/policy.py's table)."""

from __future__ import annotations

from compute.auth.policy import OPS, READERS, Rule, Scope
from compute.auth.principal import Role


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {
        # A node posts its own power and is answered with its own caps; operators may too
        # (a node check run by hand with an operator's token).
        ("POST", f"{v1}/nodes/{{name}}/power"): Rule(OPS | {Role.NODE}, Scope.NODE),
        ("GET", f"{v1}/nodes/{{name}}/power"): Rule(READERS | {Role.NODE}, Scope.NODE),
        ("GET", f"{v1}/power/caps"): Rule(READERS),
        ("POST", f"{v1}/power/caps"): Rule(OPS),
        ("POST", f"{v1}/power/caps/revert"): Rule(OPS),
    }
