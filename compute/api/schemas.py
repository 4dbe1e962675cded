"""Request and response bodies (apart from the domain types and the tables)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from compute.validation import NodeName, Reason, ShortText, TenantName


class DrainRequest(BaseModel):
    # Strict: "now": "on" or 1 must not take a node down (it ends running jobs).
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Reason = Field(description="Why; recorded after 'computectl: operator: '.")
    now: bool = Field(False, description="Take the node down now, ending running jobs.")


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    force: bool = Field(False, description="Lift a drain someone else made.")
    skip_burn_in: bool = Field(False, description="Return to service without burn-in.")


# Node names or Slurm hostlists (gpu-[001-016]); the service checks and expands them.
Targets = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=4096)]],
    Field(min_length=1, max_length=4096, description="Node names or Slurm hostlists."),
]


class DrainManyRequest(DrainRequest):
    nodes: Targets


class ResumeManyRequest(ResumeRequest):
    nodes: Targets


class PoolModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    check: ShortText | None = Field(
        None, description="Only this check, in an enforcing pool (default: the whole pool)."
    )


class TokenRequest(BaseModel):
    """A new API token; the answer shows it once."""

    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["operator", "viewer", "tenant-admin", "tenant-member", "node"] = Field(
        description="What the token may do."
    )
    tenant: TenantName | None = Field(None, description="The tenant (tenant roles only).")
    node: NodeName | None = Field(None, description="The node (node role only).")
    expires: str | None = Field(
        None, max_length=16, description="Lifetime: 3600s, 90m, 12h, 30d (default: none)."
    )
    name: ShortText | None = Field(None, description="What it is for (shown in listings).")


class KubeconfigRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    hours: float = Field(
        1.0, ge=0.17, le=24, description="How long its token is valid (10 min to a day)."
    )
