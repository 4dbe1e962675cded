"""The [energy] section: energy per tenant (facility energy through each site's PUE)
and billing exports."""

from __future__ import annotations

from pydantic import Field, field_validator

from compute.config_base import Section as _Section

# Power usage effectiveness: facility energy over IT energy. 1.0 is a perfect facility;
# anything above 3 is a mistake in the settings rather than a datacenter.
MIN_PUE = 1.0
MAX_PUE = 3.0


class EnergySettings(_Section):
    """[energy]"""

    pue: float = Field(
        1.3,
        ge=MIN_PUE,
        le=MAX_PUE,
        description="Power usage effectiveness of a site without its own entry in "
        "[energy.site_pue]: the facility's energy (cooling, power conversion) per joule the "
        "nodes draw. A tenant's facility energy is its measured energy times this.",
    )
    site_pue: dict[str, float] = Field(
        default_factory=dict,
        description="PUE per site name (the site of the node's rack's room), e.g. "
        '{ "dc1" = 1.2 }. Sites not named here take [energy] pue.',
    )
    max_gap_seconds: float = Field(
        900.0,
        ge=10,
        le=86_400,
        description="The longest interval between two sweeps whose energy is counted: each "
        "sweep's power stands for the interval since the one before; a longer gap (the "
        "control plane was down) is not extrapolated, only recorded and reported "
        "(docs/energy.md).",
    )
    retention_days: int = Field(
        400,
        ge=1,
        le=3_660,
        description="Days of hourly energy per tenant, pool and GPU model kept for billing; "
        "older hours are deleted.",
    )

    @field_validator("site_pue", mode="before")
    @classmethod
    def _sane_pue(cls, v: object) -> dict[str, float]:
        if not isinstance(v, dict):
            raise ValueError("must be a table of site name = PUE")
        for site, pue in v.items():
            if not site or len(site) > 128:
                raise ValueError("site names must be 1 to 128 characters")
            if isinstance(pue, bool) or not isinstance(pue, int | float):
                raise ValueError(f"site {site!r}: PUE must be a number")
            if not MIN_PUE <= pue <= MAX_PUE:  # NaN fails this too
                raise ValueError(f"site {site!r}: PUE must be {MIN_PUE:g} to {MAX_PUE:g}")
        return {k: float(p) for k, p in v.items()}

    def pue_of(self, site: str) -> float:
        return self.site_pue.get(site, self.pue)
