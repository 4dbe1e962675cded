"""A simulated technician: fixes nodes in repair after a while and hands them back to burn-in."""

from __future__ import annotations

from datetime import timedelta

from compute.clock import Clock
from compute.errors import ComputeError
from compute.services.nodes import NodeService
from compute.simulation.datacenter import SimulatedDatacenter
from compute.store import Store
from health.policy import Lifecycle

TECHNICIAN = "technician (simulated)"


def repair_due(
    store: Store, nodes: NodeService, dc: SimulatedDatacenter, clock: Clock, after_hours: float
) -> list[str]:
    if after_hours <= 0:
        return []
    now = clock.now()
    fixed = []
    for node in store.nodes(state=Lifecycle.REPAIR):
        if now - node.state_since >= timedelta(hours=after_hours):
            dc.repair(node.name)
            try:
                nodes.resume(node.name, actor=TECHNICIAN)
            except ComputeError:
                continue
            fixed.append(node.name)
    return fixed
