"""The authorization rows of job impact (merged into compute/auth/policy.py's table).

A tenant's incidents (its jobs and pods that infrastructure faults hit) are its own: its
admin and users see their tenant's, operators and viewers every tenant's."""

from __future__ import annotations

from compute.auth.policy import TENANT_READERS, Rule, Scope


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {("GET", f"{v1}/tenants/{{name}}/incidents"): Rule(TENANT_READERS, Scope.TENANT)}
