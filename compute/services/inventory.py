"""Reconciling the store with what each workload manager reports about its nodes.

The workload manager is the truth about drains: a drain someone else made is
recorded as theirs and left alone; a drain of ours that someone lifted is
respected. computectl only adds what it learns (new nodes, job counts).

A node its pool's workload manager no longer lists (``kubectl delete node``, a node
taken out of slurm.conf) leaves service: it becomes ``retired`` with backend state
``gone`` and a ``node_missing`` event, so it is no longer counted as usable capacity.
Only a listing that succeeded counts: a backend that could not be asked says
nothing about its nodes, and neither does a listing with none of a pool's nodes
(a renamed partition, a label selector gone wrong): that is reported, never read
as the whole pool gone. Nothing is done to the node in the backend (there is
nothing left to do it to). If it is listed again it comes back like a new node:
through burn-in (or straight into service with ``new_nodes = "in_service"``);
a node that was in repair goes back to repair.

A node listed in another pool than before moves there (an event says so).

Text a workload manager reports (drain reasons anyone may set) is made safe here,
at the boundary, like any other input.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from compute.domain import AUTOMATION, Event, EventKind, Node
from compute.services.listed_domains import mismatch_event, resolve, with_listed
from compute.services.safe_text import safe
from health.policy import (
    OWNED_PREFIX,
    DrainOwner,
    Lifecycle,
    back_in_service,
    is_owned,
)
from scheduler.protocol import NodeStatus

# The backend state of a node its workload manager stopped listing.
GONE = "gone"
_DRAINED_STATES = (Lifecycle.DRAINING, Lifecycle.DRAINED, Lifecycle.BURN_IN, Lifecycle.REPAIR)


@dataclass
class SyncResult:
    nodes: dict[str, Node] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)
    # Pools whose listing said nothing believable (none of their nodes): why, per pool.
    suspect: dict[str, str] = field(default_factory=dict)
    # Each node listed, as listed (its text made safe).
    listed: dict[str, NodeStatus] = field(default_factory=dict)


def reconcile(
    known: Mapping[str, Node],
    statuses: list[NodeStatus],
    node_rack: Mapping[str, str],
    new_nodes: str,
    now: datetime,
    listed_pools: Collection[str] | None = None,
    observed: Collection[str] = (),
) -> SyncResult:
    """``listed_pools``: the pools whose workload manager listed its nodes this time
    (None: all of them); a node of such a pool that is not listed is gone. ``observed``:
    pools in observe mode, whose new idle nodes are adopted as they are (in service), with
    the burn-in computectl would have started recorded as a ``would_act`` event."""
    out = SyncResult(nodes=dict(known))
    seen: set[str] = set()
    domains = resolve(statuses, known)
    for s in statuses:
        reason, state = safe(s.reason), safe(s.state)
        domain, listed_as = domains.get(s.name, ""), s.nvlink_domain
        if reason != s.reason or state != s.state or domain != listed_as:
            s = replace(s, reason=reason, state=state, nvlink_domain=domain)
        seen.add(s.name)
        node = known.get(s.name)
        if node is not None and node.state is Lifecycle.RETIRED and node.backend_state == GONE:
            node = _returned(node, s, new_nodes, now)
            why = f"listed again by its workload manager, {node.state.value}"
            out.events.append(_seen(now, s, EventKind.NODE_RETURNED, why, "backend"))
        elif node is None:
            rack = s.rack or node_rack.get(s.name, "unassigned")
            node = _new_node(s, rack, new_nodes, now)
            if s.pool in observed and node.state is Lifecycle.BURN_IN and not s.drain:
                # Not ours to take out of service yet: say what would have been done.
                node = _new_node(s, rack, "in_service", now)
                out.events.append(_would_burn_in(now, s))
            out.added.add(s.name)
            why = f"first seen, {node.state.value}"
            out.events.append(_seen(now, s, EventKind.NODE_ADDED, why, AUTOMATION))
        else:
            if s.pool != node.pool:
                why = f"moved from pool {node.pool} to {s.pool}"
                out.events.append(_seen(now, s, EventKind.POOL_CHANGED, why, "backend"))
                node = node.evolve(pool=s.pool)
            node, events = _reconcile_one(node, s, now)
            out.events += events
        out.nodes[s.name] = seen_as(node, s, now)
        noted = mismatch_event(node, out.nodes[s.name], listed_as, now)
        if noted is not None:
            out.events.append(noted)
        out.listed[s.name] = s
        out.changed.add(s.name)
    missing = [
        n
        for name, n in known.items()
        if name not in seen
        and n.state is not Lifecycle.RETIRED
        and (listed_pools is None or n.pool in listed_pools)
    ]
    listed_in = {s.pool for s in statuses}
    for pool in sorted({n.pool for n in missing} - listed_in):
        out.suspect[pool] = "the listing held none of its nodes; none is taken for gone"
    for node in missing:
        name = node.name
        if node.pool in out.suspect:
            continue
        out.nodes[name] = node.evolve(
            state=Lifecycle.RETIRED,
            state_since=now,
            backend_state=GONE,
            jobs_running=0,
            gpus_allocated=0,
            automation_drain=False,
            deferred_reason="",
            health=node.health.evolve(gone_from=node.state.value),
        )
        out.changed.add(name)
        out.events.append(
            Event(
                at=now,
                node=name,
                kind=EventKind.NODE_MISSING,
                reason=f"no longer listed by its workload manager (was {node.state.value})",
                actor="backend",
                pool=node.pool,
            )
        )
    return out


def seen_as(node: Node, s: NodeStatus, now: datetime) -> Node:
    """What a listing says of a node besides its drain: its work, its GPUs, where it sits
    (its NVLink domain as ``reconcile`` resolved it). A node written since the listing was
    asked for gets only this (its drain as listed may be older than what was done to it
    since; the next listing tells)."""
    return node.evolve(
        jobs_running=s.jobs,
        gpus_allocated=s.gpus_allocated,
        backend_state=s.state,
        last_seen=now,
        gpu_count=s.gpus_total or node.gpu_count,
        gpu_model=s.gpu_model or node.gpu_model,
        # Where the workload manager places it; an unknown rack keeps the configured one.
        rack=s.rack or node.rack,
        switch=s.switch,
        health=with_listed(node.health, s.nvlink_domain),
    )


def _would_burn_in(now: datetime, s: NodeStatus) -> Event:
    reason = "new node: burn-in before service"
    return Event(
        at=now,
        node=s.name,
        kind=EventKind.WOULD_ACT,
        reason=reason,
        actor=AUTOMATION,
        pool=s.pool,
        detail={"action": "start_burn_in", "check": "", "reason": reason, "mode": "observe"},
    )


def _seen(now: datetime, s: NodeStatus, kind: str, reason: str, actor: str) -> Event:
    """An event about a node as its workload manager listed it."""
    return Event(at=now, node=s.name, kind=kind, reason=reason, actor=actor, pool=s.pool)


def _returned(node: Node, s: NodeStatus, new_nodes: str, now: datetime) -> Node:
    """A node listed again after it was gone: like a new node, but one that was in repair
    goes back to repair (drained again by the policy), and its history is kept."""
    health = node.health.evolve(gone_from="")
    if node.health.gone_from == Lifecycle.REPAIR.value:
        return node.evolve(
            pool=s.pool,
            state=Lifecycle.DRAINED,
            state_since=now,
            drain_owner=DrainOwner.COMPUTECTL,
            drain_actor=AUTOMATION,
            automation_drain=True,
            health=health.evolve(repair_next=True),
        )
    # The same row: written on the version it was read at.
    return _new_node(s, node.rack, new_nodes, now).evolve(health=health, version=node.version)


def _new_node(s: NodeStatus, rack: str, new_nodes: str, now: datetime) -> Node:
    # One Node made, not one and a copy: a new site's first sweep makes 10,240.
    how: dict[str, Any]
    if s.drain and not is_owned(s.reason):
        how = {
            "state": Lifecycle.DRAINING if s.jobs else Lifecycle.DRAINED,
            "drain_reason": s.reason,
            "drain_owner": DrainOwner.EXTERNAL,
        }
    elif s.drain:
        # Ours from an earlier life of this store: burn it in before trusting it.
        how = {
            "state": Lifecycle.BURN_IN,
            "drain_reason": s.reason,
            "drain_owner": DrainOwner.COMPUTECTL,
            "drain_actor": AUTOMATION,
        }
    elif s.jobs or new_nodes == "in_service":
        how = {"state": Lifecycle.IN_SERVICE}
    else:
        how = {
            "state": Lifecycle.BURN_IN,
            "drain_owner": DrainOwner.COMPUTECTL,
            "drain_actor": AUTOMATION,
        }
    return Node(
        name=s.name,
        pool=s.pool,
        rack=rack,
        gpu_model=s.gpu_model,
        gpu_count=s.gpus_total,
        state_since=now,
        **how,
    )


def _reconcile_one(node: Node, s: NodeStatus, now: datetime) -> tuple[Node, list[Event]]:
    events: list[Event] = []

    def ev(kind: str, reason: str) -> None:
        events.append(
            Event(at=now, node=node.name, kind=kind, reason=reason, actor="backend", pool=node.pool)
        )

    if node.state is Lifecycle.RETIRED:
        return node, events
    if s.drain and not is_owned(s.reason):
        if node.drain_owner is not DrainOwner.EXTERNAL or node.drain_reason != s.reason:
            ev(EventKind.EXTERNAL_DRAIN, s.reason)
            keep = node.state in (Lifecycle.REPAIR,)
            node = node.evolve(
                state=node.state if keep else (Lifecycle.DRAINING if s.jobs else Lifecycle.DRAINED),
                state_since=node.state_since if keep else now,
                drain_reason=s.reason,
                drain_owner=DrainOwner.EXTERNAL,
                drain_actor="",
                automation_drain=False,
                deferred_reason="",
            )
        elif node.state is Lifecycle.DRAINING and not s.jobs:
            node = node.evolve(state=Lifecycle.DRAINED, state_since=now)
        return node, events
    if not s.drain:
        if node.state in _DRAINED_STATES and node.drain_reason:
            ev(
                EventKind.EXTERNAL_RESUME,
                f"drain lifted outside computectl (was: {node.drain_reason})",
            )
            node = back_in_service(node, now)
        return node, events
    # Drained with a reason of ours.
    if node.state is Lifecycle.IN_SERVICE or node.drain_owner is not DrainOwner.COMPUTECTL:
        # We drained it but did not get to record it (a crash between the two): adopt it.
        ev(EventKind.DRAIN, f"adopted: {s.reason}")
        # An operator's drain (made through computectl) stays the operator's: it is never
        # turned into automation's, which would return the node to service on its own.
        operator = s.reason.startswith(f"{OWNED_PREFIX} operator:")
        node = node.evolve(
            state=Lifecycle.DRAINING if s.jobs else Lifecycle.DRAINED,
            state_since=now,
            drain_reason=s.reason,
            drain_owner=DrainOwner.COMPUTECTL,
            drain_actor="operator" if operator else AUTOMATION,
            automation_drain=not operator,
        )
    return node, events
