"""The rack budget's GPU power caps: requested through the power-cap service
(compute/services/power_caps.py) on an over rack's idle nodes and its nodes in
[topology] cap_pools, renewed before they expire while the rack stays over, reverted once it
is back under. Only the policy's own caps (source "policy") are reverted, and a node an
operator capped is not capped by the policy at all: an operator's caps stand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from compute.domain import Node
from compute.services.power_caps import request_caps, revert_caps
from compute.store import power_caps as caps_kept
from compute.store.topology import Standing
from health.policy import Lifecycle

if TYPE_CHECKING:
    from compute.runtime import Runtime

ACTOR = "computectl/rack-budget"
SOURCE = "policy"


def eligible(nodes: list[Node], rack: str, pools: list[str]) -> list[str]:
    """Pure: the rack's nodes in service that are idle, or in one of ``pools``."""
    return sorted(
        n.name
        for n in nodes
        if n.rack == rack
        and n.state is Lifecycle.IN_SERVICE
        and (n.gpus_allocated == 0 or n.pool in pools)
    )


def operator_capped(rt: Runtime, nodes: list[str]) -> set[str]:
    """Nodes with a cap of anyone but the policy still active: the policy leaves them be
    (its cap would supersede theirs)."""
    active = caps_kept.listed(rt.store, nodes=nodes, states=caps_kept.ACTIVE, limit=100_000)
    return {c.node for c in active if c.source != SOURCE}


def cap_over(rt: Runtime, st: Standing, now: datetime) -> tuple[Standing, list[str]]:
    """Cap the over rack's eligible nodes not capped yet, or all of them once the caps are
    within half their life of expiring. (the standing with what the policy capped, errors)."""
    topo = rt.settings.topology
    until = st.detail.get("caps_until")
    renew = until is None or datetime.fromisoformat(str(until)) - now < timedelta(
        minutes=topo.cap_minutes / 2
    )
    wanted = eligible(rt.store.nodes(), st.rack, topo.cap_pools)
    theirs = operator_capped(rt, wanted)
    wanted = [n for n in wanted if n not in theirs]
    todo = wanted if renew else [n for n in wanted if n not in st.capped]
    if not todo:
        return st, []
    expires = now + timedelta(minutes=topo.cap_minutes)
    reason = f"rack {st.rack} over its power budget ({st.watts:.0f} W of {st.limit_watts:.0f} W)"
    try:
        request_caps(
            rt,
            todo,
            topo.cap_gpu_watts,
            gpus=None,
            actor=ACTOR,
            reason=reason,
            expires_at=expires,
            source=SOURCE,
        )
    except Exception as exc:  # the service says why (rate limit, ...); the next sweep retries
        return st, [f"rack {st.rack}: power caps: {exc}"]
    detail = {**st.detail, "caps_until": expires.isoformat()} if renew else dict(st.detail)
    return replace(st, capped=tuple(sorted(set(st.capped) | set(todo))), detail=detail), []


def revert_under(rt: Runtime, st: Standing) -> tuple[Standing, list[str]]:
    """Revert the policy's caps on a rack back under its budget. (the standing, errors)."""
    try:
        revert_caps(
            rt,
            nodes=list(st.capped),
            actor=ACTOR,
            reason=f"rack {st.rack} back under its power budget",
            source=SOURCE,
        )
    except Exception as exc:
        return st, [f"rack {st.rack}: power caps: {exc}"]
    detail = {k: v for k, v in st.detail.items() if k != "caps_until"}
    return replace(st, capped=(), detail=detail), []
