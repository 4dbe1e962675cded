"""What the API, the CLI and /metrics show of power: caps, a node's readings, limits, caps
and series, and the operators' requests (by node or rack, with a duration) made service
calls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from compute.errors import InvalidInput, NotFoundError
from compute.services import power_caps as caps
from compute.store import power as readings
from compute.store import power_caps as kept
from compute.store.power_caps import PowerCap

if TYPE_CHECKING:
    from compute.runtime import Runtime

SERIES_WINDOW = timedelta(hours=24)
SERIES_POINTS = 500


def cap_view(c: PowerCap) -> dict[str, Any]:
    return {
        "id": c.id,
        "node": c.node,
        "rack": c.rack,
        "gpus": None if c.gpus is None else list(c.gpus),
        "watts": c.watts,
        "state": c.state,
        "source": c.source,
        "actor": c.actor,
        "reason": c.reason,
        "created_at": c.created_at,
        "expires_at": c.expires_at,
        "updated_at": c.updated_at,
        "before": dict(c.before),
        "clamped": dict(c.clamped),
        "after": dict(c.after),
        "detail": c.detail,
        "reverted_by": c.reverted_by,
        "revert_reason": c.revert_reason,
    }


def listed(rt: Runtime, *, active: bool, node: str | None, limit: int) -> list[dict[str, Any]]:
    found = kept.listed(
        rt.store,
        nodes=None if node is None else [node],
        states=kept.ACTIVE if active else None,
        limit=limit,
    )
    return [cap_view(c) for c in found]


def rack_nodes(rt: Runtime, rack: str) -> list[str]:
    names = [n.name for n in rt.store.nodes() if n.rack == rack]
    if not names:
        raise NotFoundError(f"no node in rack {rack!r}")
    return names


def targets(rt: Runtime, nodes: Sequence[str] | None, rack: str | None) -> list[str]:
    if (nodes is None) == (rack is None):
        raise InvalidInput("give nodes or a rack (one of them)")
    return rack_nodes(rt, rack) if rack is not None else list(nodes or ())


def cap(
    rt: Runtime,
    *,
    nodes: Sequence[str] | None,
    rack: str | None,
    watts: float,
    gpus: Sequence[int] | None,
    reason: str,
    duration_seconds: float | None,
    actor: str,
) -> list[dict[str, Any]]:
    """An operator's cap: ``duration_seconds`` None takes [power] default_cap_hours (0:
    until reverted), and none may be longer than max_cap_hours."""
    p = rt.settings.power
    hours = p.default_cap_hours if duration_seconds is None else duration_seconds / 3600
    if hours > p.max_cap_hours:
        raise InvalidInput(f"a cap lasts at most {p.max_cap_hours:g} h ([power] max_cap_hours)")
    expires = rt.clock.now() + timedelta(hours=hours) if hours > 0 else None
    made = caps.request_caps(
        rt, targets(rt, nodes, rack), watts, gpus=gpus, actor=actor, reason=reason,
        expires_at=expires, source="operator",
    )  # fmt: skip
    return [cap_view(c) for c in made]


def revert(
    rt: Runtime,
    *,
    nodes: Sequence[str] | None,
    rack: str | None,
    cap_ids: Sequence[int] | None,
    reason: str,
    actor: str,
) -> list[dict[str, Any]]:
    if cap_ids is not None:
        if nodes is not None or rack is not None:
            raise InvalidInput("give caps, nodes or a rack (one of them)")
        done = caps.revert_caps(rt, cap_ids=cap_ids, actor=actor, reason=reason)
    else:
        done = caps.revert_caps(rt, nodes=targets(rt, nodes, rack), actor=actor, reason=reason)
    return [cap_view(c) for c in done]


def show(rt: Runtime, node: str) -> dict[str, Any]:
    """A node's latest reading (per GPU: draw and limits; the BMC's), its caps (active and
    the last ended ones) and its power series of the last day."""
    known = rt.store.node(node)
    if known is None:
        raise NotFoundError(f"unknown node {node!r}")
    now = rt.clock.now()
    found = readings.latest(rt.store, [node])
    latest = found[0] if found else None
    stale = timedelta(seconds=rt.settings.power.stale_seconds)
    reading = None
    if latest is not None:
        reading = {
            "at": latest.at,
            "stale": now - latest.at > stale,
            "gpu_watts": round(latest.gpu_watts, 1),
            "node_watts": latest.node_watts,
            "node_source": latest.node_source,
            "node_error": latest.node_error,
            "gpus": [dict(g) for g in latest.gpus],
        }
    elif rt.datacenter is not None and node in rt.datacenter.fleet.nodes:
        reading = _simulated(rt, node)
    return {
        "node": node,
        "rack": known.rack,
        "reading": reading,
        "caps": [cap_view(c) for c in kept.listed(rt.store, nodes=[node])][-20:],
        "series": [
            {"at": s.at, "step": s.step, "watts": round(s.watts, 1),
             "peak_watts": round(s.peak_watts, 1), "samples": s.samples}
            for s in readings.series(rt.store, readings.NODE, node, now - SERIES_WINDOW,
                                     SERIES_POINTS)
        ],
        "actions": caps.node_actions(rt, node),
    }  # fmt: skip


def _simulated(rt: Runtime, node: str) -> dict[str, Any]:
    """A simulated node that never posted (its agent runs only for caps): read now, as
    its agent would post it, without storing anything."""
    from health.simulated import SimulatedTelemetry

    assert rt.datacenter is not None
    source = SimulatedTelemetry(rt.datacenter.fleet_access).power_source(node)
    gpus = source.read_power()
    bmc = source.node_reading(None)
    return {
        "at": rt.clock.now(),
        "stale": False,
        "gpu_watts": round(sum(g.power_watts for g in gpus), 1),
        "node_watts": bmc.watts,
        "node_source": bmc.source,
        "node_error": bmc.error,
        "gpus": [g.body() for g in gpus],
    }
