"""The authorization rows of lemons (merged into compute/auth/policy.py's table)."""

from __future__ import annotations

from compute.auth.policy import OPS, Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    # Clearing a mark changes what the retire policy and the RMA escalation act on, as
    # drain, resume and retire do: operators only.
    return {("POST", f"{v1}/nodes/{{name}}/lemon/clear"): Rule(OPS)}
