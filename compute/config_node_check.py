"""The [node_check] section: what the burn-in suite runs beyond its workloads (DCGM), and
how the fleet's SDC reference is formed (docs/sdc.md, docs/node-check.md)."""

from __future__ import annotations

from pydantic import Field

from compute.config_base import Section as _Section
from health.dcgm import DEFAULT_LEVEL


class NodeCheckSettings(_Section):
    """[node_check]"""

    dcgm_level: int = Field(
        DEFAULT_LEVEL,
        ge=0,
        le=4,
        description="`dcgmi diag -r LEVEL` in the burn-in suite where DCGM is installed "
        "(0: never). Level 2 adds DCGM's memory, PCIe and short diagnostic tests to the "
        "deployment checks in a few minutes; level 3's half hour of stress overlaps the "
        "burn-in's own workloads. `python -m health` reads COMPUTECTL_NODE_CHECK__DCGM_LEVEL.",
    )
    sdc_reference_days: int = Field(
        30,
        ge=1,
        le=366,
        description="The fleet's SDC reference is formed from passing SDC results of this "
        "many days (each node's newest per GPU model and software stack).",
    )
    sdc_reference_min_nodes: int = Field(
        2,
        ge=1,
        le=10_000,
        description="Nodes that must agree on a checksum before it is the fleet's reference: "
        "with one, the first node's answer would judge every other.",
    )
