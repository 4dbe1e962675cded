"""NVLink domains drained as one unit.

On a Grace Blackwell NVL72 rack the 18 compute trays' GPUs talk to each other only through
the rack's NVLink switch trays: a failed switch tray degrades every node of the domain at
once. Drained node by node, the domain would trickle out one drain budget's worth at a
time, or the brake for shared causes would hold it in service as a suspected rack fault;
either way jobs keep landing on a domain that cannot carry them. So, after each sweep:

- a domain is at fault when most of its nodes (FAULT_FRACTION, at least FAULT_MIN_NODES)
  fail their nvlink check now (links down, fabric registration failed or its bandwidth
  degraded), judged only on results fresher than the brake's window: a node whose check
  could not run is no evidence, and counts as healthy;
- the domain's nodes still in service are drained together, or not at all: only when the
  pool's drain budget has room for all of them (else the domain is held by the budget,
  and tried again each sweep), only where no brake incident holds their rack, switch or
  pool, and never in an observed pool or for the nvlink check observed there;
- one incident (scope kind "domain", compute/services/incidents.py) names the domain, the
  failing nodes and what was drained or held. Nodes drained by someone else stay theirs.

The drains name no check (as a retried drain does), so the brake does not count the
domain's own nodes as a burst against the next unrelated fault in the rack or pool.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from compute.domain import AUTOMATION, EventKind, Node, Pool
from compute.errors import BackendError, NotLeading, RefusedError
from compute.services import incidents
from compute.services.brake import scopes_of
from compute.services.gate import observed
from compute.store import incidents as kept
from compute.store import nvlink_domains as domain_members
from compute.store.incidents import OPEN
from health.nvlink_domain import believable_domain
from health.nvlink_domain import domain_of as placed
from health.policy import Action, Decision, DrainMode, Lifecycle, owned_reason
from health.policy.budget import drain_budget
from health.policy.model import NodeView, PolicyConfig
from scheduler.errors import SchedulerError

if TYPE_CHECKING:
    from compute.runtime import Runtime

log = logging.getLogger("computectl")

CHECK = "nvlink"
CAUSE = "nvlink_domain"  # the drain events' cause
FAULT_FRACTION = 0.5
FAULT_MIN_NODES = 2


def domain_of(node: Node) -> str:
    """The node's NVLink domain: its own last nvlink check's, else its workload manager's
    listing's ("" if none; health/nvlink_domain.py)."""
    return placed(node.health)


def failing(node: Node, since: datetime) -> bool:
    """The node's nvlink check failed on its latest result, taken since ``since``."""
    fresh = node.last_checked_at is not None and node.last_checked_at >= since
    return fresh and node.health.streaks.get(CHECK, 0) > 0


def suspects(found: Iterable[domain_members.Member]) -> list[str]:
    """Pure: the members of every domain enough of whose nodes fail, as recorded (freshness
    is judged on their whole records); the nodes of all other domains need no closer look."""
    groups: dict[str, list[domain_members.Member]] = defaultdict(list)
    for m in found:
        d = believable_domain(m.domain)
        if d:
            groups[d].append(m)
    return sorted(
        m.node
        for group in groups.values()
        if sum(m.failing for m in group) >= _needed(len(group))
        for m in group
    )


def _needed(size: int) -> int:
    return max(FAULT_MIN_NODES, math.ceil(FAULT_FRACTION * size - 1e-9))


@dataclass(frozen=True, slots=True)
class DomainFault:
    domain: str
    members: tuple[str, ...]
    failing: tuple[str, ...]


def domain_faults(nodes: Iterable[Node], since: datetime) -> list[DomainFault]:
    """Pure: the domains most of whose nodes fail their nvlink check on fresh results."""
    groups: dict[str, list[Node]] = defaultdict(list)
    for n in nodes:
        d = domain_of(n)
        if d and n.state is not Lifecycle.RETIRED:
            groups[d].append(n)
    out = []
    for d, members in sorted(groups.items()):
        bad = tuple(sorted(n.name for n in members if failing(n, since)))
        if len(bad) >= _needed(len(members)):
            out.append(DomainFault(d, tuple(sorted(n.name for n in members)), bad))
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with a faulted domain: drain ``drain`` (all of them), or hold them."""

    drain: tuple[str, ...]
    held: str = ""  # why nothing is drained ("" when ``drain`` goes ahead)


def plan(
    members: Sequence[Node],
    views: Mapping[str, Sequence[NodeView]],
    policy: PolicyConfig,
) -> Plan:
    """Pure: the domain's nodes still in service, drained together if every pool's drain
    budget has room for its share of them; none if any has not (a domain half drained is
    still broken, and the budget is the first rule)."""
    todo = [n for n in members if n.state is Lifecycle.IN_SERVICE and not n.drain_reason]
    need: dict[str, int] = defaultdict(int)
    for n in todo:
        need[n.pool] += 1
    for pool, count in sorted(need.items()):
        pool_views = views.get(pool, ())
        budget = drain_budget(len(pool_views), policy)
        out = sum(1 for v in pool_views if v.automation_drain and not v.voluntary)
        room = budget - out
        if count > room:
            return Plan(
                (),
                f"held by the drain budget: the domain has {count} nodes in service in pool "
                f"{pool}, whose budget ({budget} nodes) has room for {max(0, room)}",
            )
    return Plan(tuple(sorted(n.name for n in todo)))


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: faulted NVLink domains drained as one
    unit; what could not be done, one line each (the next sweep tries again)."""
    if not rt.may_act():
        return []
    now = rt.clock.now()
    window = timedelta(minutes=rt.settings.remediation.brake.window_minutes)
    nodes = {}
    for name in suspects(domain_members.members(rt.store)):
        node = rt.store.node(name)
        if node is not None:
            nodes[name] = node
    errors: list[str] = []
    for fault in domain_faults(nodes.values(), now - window):
        try:
            with rt.acting.lock:
                errors += act_on(rt, fault, [nodes[m] for m in fault.members], now)
        except NotLeading:
            return errors
        except Exception as exc:  # one domain failing leaves the others' work standing
            log.exception("nvlink domain %s", fault.domain)
            errors.append(f"nvlink domain {fault.domain}: {exc}")
    return errors


def act_on(rt: Runtime, fault: DomainFault, members: list[Node], now: datetime) -> list[str]:
    """Drain ``fault``'s domain as one unit, or hold it; one incident either way."""
    # As stored now (the sweep may have acted on some since it read them).
    fresh = [n for n in (rt.store.node(m.name) for m in members) if n is not None]
    known = {pool.name: pool for pool in rt.store.pools()}
    pools = {n.pool: known.get(n.pool) for n in fresh}
    views = {name: rt.store.budget_views(name) for name in pools}
    p = plan(fresh, views, rt.policy)
    if not p.drain and not p.held:
        return []  # every node is out already: nothing of the domain left to take out
    held = p.held or _braked(rt, fresh, now) or _observed(pools, p.drain)
    draft = incidents.domain_draft(fault.domain, fault.members, fault.failing, fresh, now)
    inc, opened = incidents.open_domain(rt.store, draft)
    if held:
        if opened or inc.evidence.get("last_held") != held:
            waiting = sum(1 for n in fresh if n.state is Lifecycle.IN_SERVICE)
            incidents.note_domain(rt.store, inc.id, (), held, waiting, now)
            log.warning("nvlink domain %s: %s (incident %s)", fault.domain, held, inc.id)
        return []
    by_name = {n.name: n for n in fresh}
    reason = owned_reason(
        "nvlink-domain",
        f"{fault.domain} degraded ({len(fault.failing)} of {len(fault.members)} nodes), "
        f"incident {inc.id}",
    )
    errors: list[str] = []
    done: list[str] = []
    for name in p.drain:
        try:
            _drain(rt, by_name[name], reason, {"incident": inc.id, "domain": fault.domain})
            done.append(name)
        except (BackendError, RefusedError) as exc:
            errors.append(f"{name}: {exc}")
    incidents.note_domain(rt.store, inc.id, tuple(done), "", 0, now)
    log.warning(
        "nvlink domain %s: %d nodes drained as one unit (incident %s)",
        fault.domain,
        len(done),
        inc.id,
    )
    return errors


def _drain(rt: Runtime, node: Node, reason: str, about: dict[str, Any]) -> None:
    """Drain ``node`` for its domain, as Remediator.apply drains, with its drain event saying
    why: cause ``nvlink_domain`` (the domain's fault, not the node's: lemons do not count it,
    metrics label it), the incident and the domain."""
    d = Decision(node.name, Action.DRAIN, reason, DrainMode.DRAIN, fatal=False, check=None)
    rem = rt.remediator
    rem.require_acting(AUTOMATION)
    try:
        report = rt.backends.for_pool(node.pool).drain(node.name, reason, d.mode.value)
    except SchedulerError as exc:
        raise rem.failed(node, d, AUTOMATION, exc) from exc
    new, events = rem.recorded(node, d, AUTOMATION, report)
    told = [
        replace(e, detail={**e.detail, "cause": CAUSE, **about}) if e.kind == EventKind.DRAIN else e
        for e in events
    ]
    rem.finish(node, d, AUTOMATION, new, told, about)


def _braked(rt: Runtime, members: Sequence[Node], now: datetime) -> str:
    """Why the domain waits for a brake incident open on its nodes' rack, switch or pool
    ("" if none does): operators are judging a cause there."""
    scopes = sorted({s for n in members for s in scopes_of(n)})
    for inc in kept.scope_incidents(rt.store, scopes, now):
        if inc.state == OPEN and inc.scope_kind != incidents.DOMAIN:
            return f"held by incident {inc.id} ({inc.scope_kind} {inc.scope})"
    return ""


def _observed(pools: Mapping[str, Pool | None], names: Sequence[str]) -> str:
    """Why the domain is only recorded: its pool, or the nvlink check there, is observed."""
    probe = Decision(names[0] if names else "", Action.DRAIN, "", check=CHECK)
    for name, pool in sorted(pools.items()):
        if observed(pool, probe):
            return f"observe mode in pool {name}: would drain the domain"
    return ""
