"""The [tenants] section: how the control plane watches the tenants it made.

One section for every backend, not a setting per pool: a tenant's repair is one apply of
its whole spec across all its pools (a repair scoped to some pools would leave the tenant
half applied), and how often tenants are planned is the control plane's cadence, not a
pool's.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from compute.config_base import Section as _Section

# The one source of the default: docs/configuration.md and compute/services/drift.py read it.
DRIFT_INTERVAL_SECONDS = 300.0
# Below this a check of many tenants could take longer than its period.
MIN_DRIFT_INTERVAL_SECONDS = 30.0


class TenantsSettings(_Section):
    drift_interval_seconds: float = Field(
        DRIFT_INTERVAL_SECONDS,
        ge=0,
        le=7 * 86_400,
        description="Seconds between drift checks: after a sweep, the acting control plane "
        "plans every tenant it recorded (nothing is changed) and exports what differs from "
        "the spec as computectl_tenant_drift, with an event when an object starts and stops "
        "drifting (docs/tenant-drift.md). 0: never checked.",
    )
    repair_drift: bool = Field(
        False,
        description="Apply a drifting tenant's spec again at once (audited as automation, "
        "event tenant_drift_repaired). Default: only report it, since a hand edit may be "
        "an operator's deliberate stopgap that an automatic repair would undo.",
    )

    @field_validator("drift_interval_seconds")
    @classmethod
    def _off_or_sane(cls, v: float) -> float:
        if 0 < v < MIN_DRIFT_INTERVAL_SECONDS:
            raise ValueError(
                f"must be 0 (no drift checks) or at least {MIN_DRIFT_INTERVAL_SECONDS:g} seconds"
            )
        return v
