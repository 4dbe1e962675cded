"""The authorization rows of many tenant specs at once
(merged into compute/auth/policy.py's table)."""

from __future__ import annotations

from compute.auth.policy import OPS, Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {
        # Operators only, as for one spec. A plan changes nothing; an apply's request is
        # audited by the front door (the service audits only the tenants it changed, so an
        # unchanged re-apply would otherwise leave no trace of who ran it).
        ("POST", f"{v1}/tenants/batch/plan"): Rule(OPS),
        ("POST", f"{v1}/tenants/batch/apply"): Rule(OPS, record=True),
    }
