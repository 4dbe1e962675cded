"""The authorization rows of the SDC check's fleet reference (merged into
compute/auth/policy.py's table)."""

from __future__ import annotations

from compute.auth.policy import READERS, Rule
from compute.auth.principal import Role


def rules(v1: str) -> dict[tuple[str, str], Rule]:
    # Nodes ask for it during burn-in (their own credential); it names no node or tenant,
    # only a checksum the fleet agrees on, so people who read the fleet may see it too.
    return {("GET", f"{v1}/sdc/reference"): Rule(READERS | {Role.NODE})}
