"""Domain objects to JSON, shared by the API, the CLI's --output json and the overview page."""

from __future__ import annotations

from typing import Any

from compute.domain import Event, Gpu
from compute.services.capacity import Capacity
from compute.services.nodes import NodeDetail, node_as_dict
from compute.store import Store
from health.result import CheckResult


def event_as_dict(e: Event) -> dict[str, Any]:
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


def gpu_as_dict(g: Gpu) -> dict[str, Any]:
    return {"index": g.index, "uuid": g.uuid, "model": g.model, "serial": g.serial}


def result_as_dict(r: CheckResult) -> dict[str, Any]:
    return r.to_dict()


def detail_as_dict(d: NodeDetail) -> dict[str, Any]:
    return {
        **node_as_dict(d.node),
        "gpus": [gpu_as_dict(g) for g in d.gpus],
        "results": [result_as_dict(r) for r in d.results],
        "events": [event_as_dict(e) for e in d.events],
    }


def capacity_as_dict(c: Capacity) -> dict[str, Any]:
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


def allocations_at(store: Store) -> str | None:
    """When the allocations (GPUs held) were read: the last sweep's time; None before it."""
    last = store.meta("last_sweep") or {}
    at = last.get("at")
    return str(at) if at else None
