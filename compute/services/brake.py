"""The brake's judgement, pure: where a node shares its fate with others (its NVLink domain,
rack, leaf switch, pool), whether the drains decided there within the window point at a
shared cause, and the incident that names it. compute/services/gate.py applies it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from compute.config_sections import BrakeSettings
from compute.domain import Node
from compute.store.incidents import OPEN, DrainSeen, Incident
from health.nvlink_domain import domain_of

# Suspected shared cause by the checks that failed: (code, in an operator's words).
_CAUSES: tuple[tuple[frozenset[str], str, str], ...] = (
    (frozenset({"temperature", "throttle"}), "power_or_cooling", "rack power or cooling"),
    (
        frozenset({"infiniband", "nccl_allreduce", "nccl_pair"}),
        "network",
        "the network switch",
    ),
    (frozenset({"versions", "version_drift"}), "driver_rollout", "a bad driver rollout"),
)
UNKNOWN_CAUSE = ("unknown", "unknown")


def suspected_cause(checks: Iterable[str]) -> tuple[str, str]:
    """The shared cause the failing checks point at most; unknown when nothing stands out."""
    votes: Counter[tuple[str, str]] = Counter()
    for check in checks:
        for members, code, words in _CAUSES:
            if check in members:
                votes[(code, words)] += 1
                break
        else:
            votes[UNKNOWN_CAUSE] += 1
    ranked = votes.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return UNKNOWN_CAUSE
    return ranked[0][0]


def threshold(kind: str, size: int, brake: BrakeSettings) -> int:
    """Drains within the window (the one being decided included) that set the brake."""
    if kind == "pool":
        return brake.pool_max_nodes + 1
    fraction = brake.rack_fraction if kind == "rack" else brake.switch_fraction
    return max(brake.min_nodes, math.ceil(fraction * size - 1e-9))


def scopes_of(node: Node) -> list[tuple[str, str]]:
    """Where a node shares its fate with others, narrowest first: its NVLink domain (held
    as one unit by its own incident, compute/services/nvlink_domains.py), rack, switch,
    pool."""
    out = []
    domain = domain_of(node.health)
    if domain:
        out.append(("domain", domain))
    if node.rack and node.rack != "unassigned":
        out.append(("rack", node.rack))
    if node.switch:
        out.append(("switch", node.switch))
    out.append(("pool", node.pool))
    return out


def _holds(inc: Incident) -> bool:
    """A domain's incident holds its nodes' own drains while the domain is held (the budget
    had no room for all of them); once it drained the domain, nothing is left to hold."""
    return inc.scope_kind != "domain" or bool(inc.evidence.get("last_held"))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the brake says of one drain: pass, held by an open incident, or open one."""

    held_by: Incident | None = None
    opens: Incident | None = None


def brake_verdict(
    node: Node,
    check: str,
    now: datetime,
    drains: Sequence[DrainSeen],
    sizes: dict[tuple[str, str], int],
    incidents: Sequence[Incident],
    brake: BrakeSettings,
) -> Verdict:
    """Pure: the brake's word on draining ``node`` for ``check`` now, from the automated
    drains since the window began, the scopes' sizes, and the scopes' incidents (open, or
    released within the window)."""
    scopes = scopes_of(node)
    for inc in incidents:
        if inc.state == OPEN and (inc.scope_kind, inc.scope) in scopes and _holds(inc):
            return Verdict(held_by=inc)
    released = [i for i in incidents if i.state != OPEN]
    # An operator who released a brake judged its nodes: their drains go ahead, uncounted.
    cleared = {n for i in released for n in i.nodes}
    if node.name in cleared:
        return Verdict()
    window = now - brake_window(brake)
    for kind, scope in scopes:
        if kind == "domain":
            continue  # a domain's burst is judged as one unit, not drain by drain
        since = max([window, *(i.released_at or window for i in released if i.scope == scope)])
        seen = [
            d
            for d in drains
            if d.at >= since
            and _scope_of(d, kind) == scope
            and d.node not in cleared
            and d.node != node.name
        ]
        first = {d.node: d for d in seen}
        size = sizes.get((kind, scope), 0)
        limit = threshold(kind, size, brake)
        if len(first) + 1 < limit:
            continue
        return Verdict(opens=_draft(node, check, now, kind, scope, size, limit, first, brake))
    return Verdict()


def brake_window(brake: BrakeSettings) -> timedelta:
    return timedelta(minutes=brake.window_minutes)


def _scope_of(d: DrainSeen, kind: str) -> str:
    return {"rack": d.rack, "switch": d.switch, "pool": d.pool}[kind]


def _draft(
    node: Node,
    check: str,
    now: datetime,
    kind: str,
    scope: str,
    size: int,
    limit: int,
    drained: dict[str, DrainSeen],
    brake: BrakeSettings,
) -> Incident:
    checks = [d.check for d in drained.values()] + [check]
    cause, words = suspected_cause(checks)
    by_check = Counter(checks)
    failing = len(drained) + 1
    of = f" of {size}" if kind != "pool" else ""
    summary = (
        f"{failing}{of} nodes of {kind} {scope} failed within {brake.window_minutes:g} min "
        f"({', '.join(f'{c} x{n}' for c, n in by_check.most_common())}): suspected "
        f"{words}; automated drains there are held until an operator releases this"
    )
    return Incident(
        id=0,
        scope_kind=kind,
        scope=scope,
        pool=node.pool,
        opened_at=now,
        cause=cause,
        summary=summary,
        evidence={
            "drained": [
                {"node": d.node, "check": d.check, "at": d.at.isoformat()} for d in drained.values()
            ],
            "held": [],
            "checks": dict(by_check),
            "threshold": limit,
            "nodes_in_scope": size,
            "window_minutes": brake.window_minutes,
        },
        nodes=tuple(drained),
        state=OPEN,
        held=0,
        released_at=None,
        released_by="",
    )
