"""The authorization rows of tranche acceptance (merged into compute/auth/policy.py's table).

Bringing capacity into service is the operators'; where a tranche stands and its report are
the fleet's views: operators and viewers."""

from __future__ import annotations

from compute.auth.policy import OPS, READERS, Rule


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    return {
        ("GET", f"{v1}/acceptance"): Rule(READERS),
        ("POST", f"{v1}/acceptance"): Rule(OPS, record=True),
        ("POST", f"{v1}/acceptance/{{name}}/run"): Rule(OPS, record=True),
        ("GET", f"{v1}/acceptance/{{name}}"): Rule(READERS),
        ("GET", f"{v1}/acceptance/{{name}}/report"): Rule(READERS),
        ("GET", f"{v1}/acceptance/{{name}}/report.html"): Rule(READERS),
    }
