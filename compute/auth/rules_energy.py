"""The authorization rows of energy and GPU-hours for billing
(merged into compute/auth/policy.py's table).

A tenant's usage (energy beside its GPU-hours) keeps the usage route's rule in the policy's
own table. The fleet's billing export is every tenant's: operators and viewers, who read
each tenant's usage already."""

from __future__ import annotations

from compute.auth.policy import READERS, Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {("GET", f"{v1}/usage"): Rule(READERS)}
