"""The [topology] section: where nodes sit (sites, rooms, rows, racks) and what a rack over
its power budget does; the capacity history's sampling.

Every reference is checked at start-up: a rack in a room no site has, a row or a node placed
in a rack nobody declared, a name given twice, a budget below zero is one clear error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compute.config_base import Section as _Section

# The racks', rooms' and rows' names, as workload managers' topology names are believed
# (scheduler/topology.py): letters, digits, '.', '_', '-'.
_NAME = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$"
# Hostlists name at most this many nodes each (a typo like gpu-[1-99999999] fails early).
MAX_PLACED_NODES = 100_000

# Per-node power (watts) of an 8-GPU node of each model at full load, GPUs and host: what
# capacity planning assumes for a model no node of which has been measured yet.
DEFAULT_NODE_WATTS = {
    "H100-SXM": 10_200.0,
    "H200": 10_200.0,
    "A100-SXM": 6_500.0,
    "B200": 14_300.0,
    # 8 GPUs' worth of an NVL72 rack (~130 kW over 72 GPUs, switch trays and Grace CPUs).
    "GB200": 14_000.0,
}


class SiteSettings(_Section):
    name: str = Field(pattern=_NAME, description="Site name.")


class RoomSettings(_Section):
    name: str = Field(pattern=_NAME, description="Room name (unique across sites).")
    site: str = Field(description="The site the room is in (one of [[topology.sites]]).")
    cooling_limit_watts: float | None = Field(
        None, ge=0, le=1e9, description="What the room's cooling removes; absent: unknown."
    )


class RowSettings(_Section):
    name: str = Field(pattern=_NAME, description="Row name (unique).")
    room: str = Field(description="The room the row is in.")


class RackSettings(_Section):
    name: str = Field(pattern=_NAME, description="Rack name (unique).")
    room: str = Field(description="The room the rack is in.")
    row: str = Field("", description="The row the rack is in (one of [[topology.rows]]).")
    power_budget_watts: float = Field(
        ge=0, le=1e8, description="The rack's power budget (what its PDUs may deliver)."
    )
    cooling_limit_watts: float | None = Field(
        None,
        ge=0,
        le=1e8,
        description="What cooling removes from the rack; the lower of this and the budget "
        "is what the rack may draw.",
    )
    pdus: list[str] = Field(default_factory=list, description="The rack's PDUs, by name.")
    nodes: str = Field(
        "",
        description="The nodes in the rack, as a hostlist (gpu-[001-008]); the workload "
        "manager's own word (Slurm features, Kubernetes labels) wins where it gives one.",
    )


class TopologySettings(_Section):
    """[topology]"""

    sites: list[SiteSettings] = Field(default_factory=list, description="Sites.")
    rooms: list[RoomSettings] = Field(default_factory=list, description="Rooms.")
    rows: list[RowSettings] = Field(default_factory=list, description="Rows of racks.")
    racks: list[RackSettings] = Field(
        default_factory=list, description="Racks, their power budgets and their nodes."
    )
    forecast_minutes: float = Field(
        30.0,
        ge=0,
        le=10_080,
        description="A rack whose draw, at its recent trend, exceeds its budget within this "
        "many minutes is treated as over it; 0: only a rack over its budget now.",
    )
    trend_minutes: float = Field(
        30.0, gt=0, le=10_080, description="How far back a rack's trend is read."
    )
    recover_fraction: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="A rack over budget is back under once it draws less than its budget "
        "less this fraction (and is forecast under it): no flapping at the line.",
    )
    cap_gpus: bool = Field(
        False,
        description="While a rack is over budget, lower GPU power limits on its idle "
        "nodes and its nodes in cap_pools (through the power-cap service); reverted once "
        "the rack is back under. Operators' caps are never touched.",
    )
    cap_gpu_watts: float = Field(
        400.0, gt=0, le=5_000, description="The GPU power limit the policy sets."
    )
    cap_pools: list[str] = Field(
        default_factory=lambda: ["inference"],
        description="Pools whose busy nodes the policy caps too (inference tolerates it).",
    )
    cap_minutes: float = Field(
        120.0,
        gt=0,
        le=10_080,
        description="The policy's caps expire after this long unless renewed.",
    )
    hold: Literal["burn_in", "off"] = Field(
        "burn_in",
        description="While a rack is over budget: no burn-in starts there, so nodes "
        "back from repair wait ('off': only the event and the metric).",
    )
    capacity_sample_minutes: float = Field(
        15.0,
        gt=0,
        le=1_440,
        description="The capacity history keeps one sample of GPUs by state, pool and "
        "model per this many minutes (not one per sweep).",
    )
    capacity_history_days: float = Field(
        90.0, gt=0, le=3_650, description="Capacity samples older than this are deleted."
    )
    capacity_trend_days: float = Field(
        7.0, gt=0, le=365, description="How far back the allocation trend is read."
    )
    node_watts: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_NODE_WATTS),
        description="Per-node power (watts) by GPU model, for capacity planning where no "
        "node of the model has been measured.",
    )

    @model_validator(mode="after")
    def _references(self) -> TopologySettings:
        for kind, names in (
            ("site", [s.name for s in self.sites]),
            ("room", [r.name for r in self.rooms]),
            ("row", [r.name for r in self.rows]),
            ("rack", [r.name for r in self.racks]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"topology: {kind} names must be unique: {', '.join(dupes)}")
        sites = {s.name for s in self.sites}
        rooms = {r.name for r in self.rooms}
        rows = {r.name: r.room for r in self.rows}
        for room in self.rooms:
            if room.site not in sites:
                raise ValueError(f"topology: room {room.name!r} is in unknown site {room.site!r}")
        for row in self.rows:
            if row.room not in rooms:
                raise ValueError(f"topology: row {row.name!r} is in unknown room {row.room!r}")
        for rack in self.racks:
            if rack.room not in rooms:
                raise ValueError(f"topology: rack {rack.name!r} is in unknown room {rack.room!r}")
            if rack.row and rack.row not in rows:
                raise ValueError(f"topology: rack {rack.name!r} is in unknown row {rack.row!r}")
            if rack.row and rows[rack.row] != rack.room:
                raise ValueError(
                    f"topology: rack {rack.name!r} is in room {rack.room!r} but its row "
                    f"{rack.row!r} is in room {rows[rack.row]!r}"
                )
        self.placement()  # every hostlist expands, no node is in two racks
        for model, watts in self.node_watts.items():
            if not 0 < watts <= 1e6:
                raise ValueError(f"topology: node_watts[{model!r}] must be in (0, 1e6]")
        return self

    def placement(self) -> dict[str, str]:
        """Each node the racks name → its rack. ValueError for a hostlist that is not one,
        or a node in two racks."""
        from scheduler.slurm.hostlist import expand

        out: dict[str, str] = {}
        for rack in self.racks:
            if not rack.nodes:
                continue
            try:
                names = expand(rack.nodes, limit=MAX_PLACED_NODES)
            except ValueError as exc:
                raise ValueError(f"topology: rack {rack.name!r}: nodes: {exc}") from None
            for name in names:
                if out.setdefault(name, rack.name) != rack.name:
                    raise ValueError(
                        f"topology: node {name!r} is placed in both {out[name]!r} and {rack.name!r}"
                    )
        return out

    def limit_watts(self, rack: RackSettings) -> float:
        """What the rack may draw: its budget, or its cooling limit where that is lower."""
        if rack.cooling_limit_watts is None:
            return rack.power_budget_watts
        return min(rack.power_budget_watts, rack.cooling_limit_watts)
