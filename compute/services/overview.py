"""What the fleet overview page shows: racks of nodes by state, drains, capacity, power."""

from __future__ import annotations

from typing import Any

from compute.runtime import Runtime
from compute.services.capacity import capacity
from health.policy import Lifecycle

OUT_OF_SERVICE = (
    Lifecycle.DRAINING,
    Lifecycle.DRAINED,
    Lifecycle.BURN_IN,
    Lifecycle.REPAIR,
    Lifecycle.RETIRED,
)


def overview(rt: Runtime) -> dict[str, Any]:
    store = rt.store
    nodes = store.nodes()
    power = {p.rack: p for p in store.latest_rack_power()}
    racks = []
    for rack in store.racks():
        members = [n for n in nodes if n.rack == rack.name]
        p = power.get(rack.name)
        racks.append(
            {
                "name": rack.name,
                "room": rack.room,
                "power_watts": p.watts if p else None,
                "power_budget_watts": rack.power_budget_watts,
                "nodes": [
                    {
                        "name": n.name,
                        "state": n.state.value,
                        "pool": n.pool,
                        "jobs": n.jobs_running,
                        "gpus": n.gpu_count,
                        "gpus_allocated": n.gpus_allocated,
                        "reason": n.drain_reason,
                        "deferred": bool(n.deferred_reason),
                    }
                    for n in members
                ],
            }
        )
    unracked = [n for n in nodes if n.rack not in {r["name"] for r in racks}]
    if unracked:
        racks.append(
            {
                "name": "unassigned",
                "room": "",
                "power_watts": None,
                "power_budget_watts": None,
                "nodes": [
                    {
                        "name": n.name,
                        "state": n.state.value,
                        "pool": n.pool,
                        "jobs": n.jobs_running,
                        "gpus": n.gpu_count,
                        "gpus_allocated": n.gpus_allocated,
                        "reason": n.drain_reason,
                        "deferred": bool(n.deferred_reason),
                    }
                    for n in unracked
                ],
            }
        )
    drains = [
        {
            "node": n.name,
            "pool": n.pool,
            "state": n.state.value,
            "reason": n.drain_reason,
            "owner": n.drain_owner.value if n.drain_owner else None,
            "since": n.state_since.isoformat(),
        }
        for n in sorted(nodes, key=lambda n: n.state_since, reverse=True)
        if n.state in OUT_OF_SERVICE
    ]
    deferred = [
        {"node": n.name, "pool": n.pool, "reason": n.deferred_reason}
        for n in nodes
        if n.deferred_reason
    ]
    cap = capacity(nodes, store.allocations())
    by_state: dict[str, int] = {}
    for row in cap.rows:
        by_state[row.state] = by_state.get(row.state, 0) + row.gpus
    return {
        "now": rt.clock.now().isoformat(),
        "last_sweep": store.meta("last_sweep"),
        "racks": racks,
        "drains": drains,
        "deferred": deferred,
        "gpus": {"installed": cap.installed, "by_state": by_state},
        "events": [
            {"at": e.at.isoformat(), "node": e.node, "kind": e.kind, "reason": e.reason}
            for e in store.events(limit=15)
        ],
    }
