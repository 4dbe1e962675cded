"""The configuration's topology ([topology]) recorded in the store, and its nodes placed.

Where a node sits comes from three places: the configuration's racks (``nodes`` hostlists),
Slurm's node features and topology.conf, Kubernetes' node labels (scheduler/topology.py).
The workload manager's word wins where it gives one (inventory keeps it at each sweep); the
configuration places the nodes it does not, and moves a node it placed when the
configuration moves it.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from compute.config_topology import TopologySettings
from compute.domain import AUTOMATION, AuditEntry, Rack, Room, Site
from compute.store import topology as kept
from compute.store.topology import RackInfo

if TYPE_CHECKING:
    from compute.runtime import Runtime

CONFIG_META = "topology_config"


def fingerprint(topo: TopologySettings) -> str:
    """The configuration's topology in one digest: recorded again only when it changes."""
    doc = topo.model_dump(include={"sites", "rooms", "rows", "racks"}, mode="json")
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def racks_of(topo: TopologySettings) -> list[tuple[RackInfo, Rack]]:
    return [
        (
            RackInfo(
                name=r.name,
                room=r.room,
                budget_watts=r.power_budget_watts,
                row=r.row,
                pdus=tuple(r.pdus),
                cooling_limit_watts=r.cooling_limit_watts,
            ),
            Rack(name=r.name, room=r.room, power_budget_watts=r.power_budget_watts),
        )
        for r in topo.racks
    ]


def sync(rt: Runtime) -> list[str]:
    """Record the configuration's topology where it changed, and place its nodes."""
    topo = rt.settings.topology
    if not (topo.sites or topo.rooms or topo.racks):
        return []
    digest = fingerprint(topo)
    if (rt.store.meta(CONFIG_META) or {}).get("digest") != digest:
        with rt.store.transaction() as tx:
            kept.put_config(
                tx,
                [Site(s.name) for s in topo.sites],
                [(Room(r.name, r.site), r.cooling_limit_watts) for r in topo.rooms],
                racks_of(topo),
            )
            tx.set_meta(CONFIG_META, {"digest": digest, "racks": len(topo.racks)})
            tx.add_audit(
                AuditEntry(
                    at=rt.clock.now(),
                    actor=AUTOMATION,
                    action="topology.config",
                    target=topo.sites[0].name if topo.sites else "",
                    detail={"rooms": len(topo.rooms), "racks": len(topo.racks)},
                )
            )
    kept.place(rt.store, topo.placement())
    return []
