"""Every shape a domain object takes for the outside: one view per type, shared by the API,
the CLI's --output json, the overview page and /metrics.

Views only reshape what a service returned; they read nothing and decide nothing. The CLI
prints these same views, on the data directory and through the API alike (compute/client);
where its JSON has long differed (tenants list and show), it reshapes the API's view.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from health.policy import Lifecycle

if TYPE_CHECKING:
    from compute.domain import Counted, Event, Gpu, Node
    from compute.services.capacity import Capacity, CapacityRow
    from compute.services.fabric import PairTestRun
    from compute.services.fleet import Overview, RackPowerNow, TenantDetail, TenantHolding
    from compute.services.nodes import NodeDetail
    from compute.services.rma import RmaReport
    from compute.services.sweep import SweepReport
    from compute.services.usage import TenantUsage
    from health.result import CheckResult

# Nodes the page and /metrics list as drains: everything not (yet or any more) in service.
OUT_OF_SERVICE = (
    Lifecycle.DRAINING,
    Lifecycle.DRAINED,
    Lifecycle.BURN_IN,
    Lifecycle.REPAIR,
    Lifecycle.RETIRED,
)


# -- nodes --------------------------------------------------------------------------------------


def node_view(n: Node, lemon: Event | None = None) -> dict[str, Any]:
    """``lemon``: the node's lemon mark in force (compute/services/lemons.py marks), if any."""
    return {
        "name": n.name,
        "pool": n.pool,
        "rack": n.rack,
        "gpu_model": n.gpu_model,
        "gpu_count": n.gpu_count,
        "state": n.state.value,
        "state_since": n.state_since.isoformat(),
        "drain_reason": n.drain_reason,
        "drain_owner": n.drain_owner.value if n.drain_owner else None,
        "drain_actor": n.drain_actor,
        "deferred_reason": n.deferred_reason,
        "jobs_running": n.jobs_running,
        "gpus_allocated": n.gpus_allocated,
        "backend_state": n.backend_state,
        "power_watts": round(n.power_watts, 1),
        "last_seen": n.last_seen.isoformat() if n.last_seen else None,
        "last_checked_at": n.last_checked_at.isoformat() if n.last_checked_at else None,
        "finding": finding_view(n),
        "burn_in_failures": n.health.burn_in_failures,
        "lemon": lemon_view(lemon),
    }


def lemon_view(e: Event | None) -> dict[str, Any] | None:
    """A lemon mark as shown beside its node; None for a node never marked or cleared."""
    if e is None:
        return None
    return {
        "at": e.at.isoformat(),
        "reason": e.reason,
        "action": e.detail.get("action"),
        "failures": list(e.detail.get("failures", [])),
    }


def finding_view(n: Node) -> dict[str, Any] | None:
    """What the node's health is judged on now; None when nothing is wrong."""
    f = n.health.finding
    return None if f is None else {"check": f.check, "evidence": f.evidence, "fatal": f.fatal}


def ingested_view(n: Node, accepted: int) -> dict[str, Any]:
    """The answer to a node's report: how many results were taken, and the finding now."""
    return {"accepted": accepted, "node": n.name, "finding": finding_view(n)}


def drained_view(n: Node, left_running: tuple[str, ...]) -> dict[str, Any]:
    """A drain's answer: the node, and the work its drain could not move."""
    return {**node_view(n), "left_running": list(left_running)}


def gpu_view(g: Gpu) -> dict[str, Any]:
    return {"index": g.index, "uuid": g.uuid, "model": g.model, "serial": g.serial}


def result_view(r: CheckResult) -> dict[str, Any]:
    return r.to_dict()


def node_detail_view(d: NodeDetail, lemon: Event | None = None) -> dict[str, Any]:
    return {
        **node_view(d.node, lemon),
        "gpus": [gpu_view(g) for g in d.gpus],
        "results": [result_view(r) for r in d.results],
        "events": [event_view(e) for e in d.events],
    }


def node_tile_view(n: Counted) -> dict[str, Any]:
    """A node as the overview page draws it in its rack."""
    return {
        "name": n.name,
        "state": n.state.value,
        "pool": n.pool,
        "jobs": n.jobs_running,
        "gpus": n.gpu_count,
        "gpus_allocated": n.gpus_allocated,
        "reason": n.drain_reason,
        "deferred": bool(n.deferred_reason),
    }


def drain_view(n: Counted) -> dict[str, Any]:
    """A node out of service: the page's drain list and /metrics' drain info."""
    return {
        "node": n.name,
        "pool": n.pool,
        "state": n.state.value,
        "reason": n.drain_reason,
        "owner": n.drain_owner.value if n.drain_owner else None,
        "since": n.state_since.isoformat(),
    }


# -- events, capacity, racks --------------------------------------------------------------------


def event_view(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "node": e.node,
        "pool": e.pool,
        "kind": e.kind,
        "reason": e.reason,
        "actor": e.actor,
        "detail": dict(e.detail),
    }


def capacity_view(c: Capacity) -> dict[str, Any]:
    return {
        "installed_gpus": c.installed,
        "total_gpus": c.total,
        "by_state": [
            {"pool": r.pool, "gpu_model": r.gpu_model, "state": r.state, "gpus": r.gpus}
            for r in c.rows
        ],
        "by_tenant": [
            {"tenant": t.tenant, "pool": t.pool, "gpu_model": t.gpu_model, "gpus": t.gpus}
            for t in c.tenants
        ],
    }


def gpus_by_state(rows: list[CapacityRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row.state] = out.get(row.state, 0) + row.gpus
    return out


def rack_view(r: RackPowerNow) -> dict[str, Any]:
    return {
        "name": r.rack.name,
        "room": r.rack.room,
        "power_budget_watts": r.rack.power_budget_watts,
        "power_watts": r.power_watts,
    }


# -- tenants ------------------------------------------------------------------------------------


def tenant_view(t: TenantHolding) -> dict[str, Any]:
    return {
        "name": t.record.name,
        "state": t.record.state,
        "spec": t.record.spec,
        "gpus_allocated": t.held_by_pool,
        "gpus_allocated_at": t.allocations_at,
        "updated_at": t.record.updated_at.isoformat(),
    }


def tenant_detail_view(d: TenantDetail) -> dict[str, Any]:
    return {
        **tenant_view(d.holding),
        "allocations": [dataclasses.asdict(a) for a in d.holding.allocations],
        "jobs": [dataclasses.asdict(j) for j in d.jobs],
    }


def usage_view(u: TenantUsage) -> dict[str, Any]:
    """A tenant's GPU-hours per UTC day, pool, GPU model and backend; notes say what a
    backend could not tell (one down, records left out)."""
    return {
        "tenant": u.tenant,
        "since": u.since.isoformat(),
        "until": u.until.isoformat(),
        "days": u.days,
        "rows": [
            {
                "day": r.day.isoformat(),
                "pool": r.pool,
                "gpu_model": r.gpu_model,
                "gpu_hours": round(r.gpu_hours, 6),
                "source": r.source,
            }
            for r in u.rows
        ],
        "notes": list(u.notes),
    }


# -- reports ------------------------------------------------------------------------------------


def sweep_report_view(r: SweepReport) -> dict[str, Any]:
    """The API's answer to a sweep and `computectl sweep -o json`: every field."""
    return dataclasses.asdict(r)


def rma_report_view(r: RmaReport) -> dict[str, Any]:
    n = r.node
    suspect = r.suspect_gpus
    return {
        "node": n.name,
        "pool": n.pool,
        "rack": n.rack,
        "gpu_model": n.gpu_model,
        "gpu_count": n.gpu_count,
        "state": n.state.value,
        "state_since": n.state_since.isoformat(),
        "drain_reason": n.drain_reason,
        "suspect_gpus": suspect,
        "xid_codes": r.xid_codes,
        "lemon": lemon_view(r.lemon),
        "gpus": [{**_gpu_rma(g), "suspect": g.index in suspect} for g in r.gpus],
        "failures": [result_view(x) for x in r.failures],
        "burn_in": [result_view(x) for x in r.burn_in],
        "history": [
            {"at": e.at.isoformat(), "kind": e.kind, "reason": e.reason, "actor": e.actor}
            for e in r.history
        ],
    }


def _gpu_rma(g: Gpu) -> dict[str, Any]:
    return {"index": g.index, "uuid": g.uuid, "serial": g.serial, "model": g.model}


def pair_test_view(run: PairTestRun) -> dict[str, Any]:
    r = run.report
    return {
        "pool": run.pool,
        "nodes": list(run.nodes),
        "rounds": run.rounds,
        "reference_busbw_gbps": r.reference_gbps,
        "judged": r.judged,
        "floor_gbps": r.floor_gbps,
        "slow_ratio": r.slow_ratio,
        "healthy": r.healthy,
        "pairs": [
            {
                "nodes": list(v.nodes),
                "busbw_gbps": v.busbw_gbps,
                "ratio": v.ratio,
                "slow": v.slow,
                "failed": v.failed,
                "job": v.job,
                "error": v.error,
            }
            for v in r.pairs
        ],
        "suspect_nodes": r.suspect_nodes,
        "suspect_links": [list(link) for link in r.suspect_links],
        "inconclusive": list(r.inconclusive),
        "untested": list(r.untested),
        "drained": list(run.drained),
        "drain_errors": run.drain_errors,
        "drain_refused": run.drain_refused,
        "rechecks": [
            {
                "node": c.node,
                "partner": c.partner,
                "busbw_gbps": c.busbw_gbps,
                "ratio": c.ratio,
                "outcome": c.outcome.value,
                "error": c.error,
                "job": c.job,
            }
            for c in run.rechecks
        ],
    }


def overview_view(o: Overview) -> dict[str, Any]:
    """Everything the fleet overview page draws."""
    # Grouped once: a rack's tiles picked from every node was 0.14 s at 10,240 nodes.
    tiles: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n in o.nodes:
        tiles[n.rack].append(node_tile_view(n))
    racks = [
        {
            "name": r.rack.name,
            "room": r.rack.room,
            "power_watts": r.power_watts,
            "power_budget_watts": r.rack.power_budget_watts,
            "nodes": tiles.pop(r.rack.name, []),
        }
        for r in o.racks
    ]
    unracked = sorted((t for rack in tiles.values() for t in rack), key=lambda t: t["name"])
    if unracked:
        racks.append(
            {
                "name": "unassigned",
                "room": "",
                "power_watts": None,
                "power_budget_watts": None,
                "nodes": unracked,
            }
        )
    return {
        "now": o.now.isoformat(),
        "last_sweep": o.last_sweep,
        "racks": racks,
        "drains": [
            drain_view(n)
            for n in sorted(o.nodes, key=lambda n: n.state_since, reverse=True)
            if n.state in OUT_OF_SERVICE
        ],
        "deferred": [
            {"node": n.name, "pool": n.pool, "reason": n.deferred_reason}
            for n in o.nodes
            if n.deferred_reason
        ],
        "gpus": {"installed": o.installed, "by_state": gpus_by_state(o.gpus)},
        "events": [
            {k: event_view(e)[k] for k in ("at", "node", "kind", "reason")} for e in o.events
        ],
    }
