"""The [power] section: GPU power readings from nodes and power caps through the node agent
(docs/power.md)."""

from __future__ import annotations

from pydantic import Field

from compute.config_base import Section as _Section


class PowerSettings(_Section):
    """[power]"""

    cap_rate_limit_per_hour: int = Field(
        6,
        ge=1,
        le=1000,
        description="Power caps one node may be given in a rolling hour, by operators and "
        "policy together; one more is refused (HTTP 429, exit 2) and nothing is recorded. "
        "Reverts are never refused: undoing a cap must always be possible.",
    )
    default_cap_hours: float = Field(
        4.0,
        ge=0,
        le=24 * 365,
        description="How long a cap given without --for lasts before it is reverted by "
        "itself (after the next sweep). 0: until reverted.",
    )
    max_cap_hours: float = Field(
        7 * 24.0,
        gt=0,
        le=24 * 365,
        description="The longest --for a cap may be given.",
    )
    ipmitool: bool = Field(
        True,
        description="The node check reads the node's own power from its BMC with "
        "`ipmitool dcmi power reading` (missing tool, no BMC or an error: reported as not "
        "available; never a failure of the node).",
    )
    ipmitool_path: str = Field(
        "ipmitool",
        min_length=1,
        max_length=255,
        description="The ipmitool the node check runs (a name looked up on PATH, or a path).",
    )
    sample_interval_seconds: float = Field(
        300.0,
        ge=1,
        le=86_400,
        description="Seconds between two stored samples of one node's or rack's power series "
        "(a report sooner updates the latest reading only); simulated nodes are sampled "
        "after a sweep at this cadence.",
    )
    raw_retention_hours: float = Field(
        24.0,
        ge=1,
        le=24 * 31,
        description="Raw power samples older than this are folded into buckets of "
        "bucket_seconds (mean and peak).",
    )
    bucket_seconds: int = Field(
        3600,
        ge=60,
        le=86_400,
        description="The width of the buckets older samples are folded into.",
    )
    retention_days: float = Field(
        30.0,
        ge=1,
        le=3650,
        description="Buckets older than this are deleted.",
    )
    max_samples_per_series: int = Field(
        1500,
        ge=100,
        le=1_000_000,
        description="Rows kept per node or rack series at most (the oldest go first): "
        "bounds the store whatever the cadence.",
    )
    stale_seconds: float = Field(
        900.0,
        ge=10,
        le=86_400,
        description="A node's reading older than this is left out of its rack's sum and "
        "shown as stale.",
    )
