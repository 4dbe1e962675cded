"""Reads for /metrics: aggregates the database computes (GROUP BY, window functions), so a
scrape of a 10,000-node fleet reads a few hundred rows, not every node (histograms take one
number per drain, bucketed by the caller's process).

Reads of events take a span of ids: events are never pruned (Tx.prune keeps them), so
figures over spans add up to figures over all (compute/metrics/tally.py keeps them).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from compute.domain import AUTOMATION, EventKind
from compute.store import Store
from compute.store.models import (
    AllocationRow,
    EventRow,
    IncidentRow,
    LeaseRow,
    NodeRow,
    PoolRow,
)
from health.policy import Lifecycle

# Event kinds the gate (compute/services/gate.py) records; strings here so this module
# does not depend on the services layer.
WOULD_ACT = "would_act"
DRAIN_HELD = "drain_held"


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """Nodes of one pool, GPU model and lifecycle state."""

    pool: str
    gpu_model: str
    state: str
    nodes: int
    gpus: int
    # GPUs allocated, clamped to the node's count (in-service nodes only).
    allocated: int
    automation_drains: int
    deferred: int


@dataclass(frozen=True, slots=True)
class OutOfService:
    node: str
    pool: str
    state: str
    owner: str
    reason: str


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative counts: ``counts[i]`` observations <= ``bounds[i]``."""

    counts: tuple[int, ...]
    count: int
    total: float


@dataclass(frozen=True, slots=True)
class OpenIncident:
    id: int
    scope_kind: str
    scope: str
    pool: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    epoch: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Span:
    """Events with ids in (after, upto]; upto None: to the newest."""

    after: int = 0
    upto: int | None = None

    def holds(self, ids: Any) -> ColumnElement[bool]:
        return and_(ids > self.after, true() if self.upto is None else ids <= self.upto)


ALL = Span()


def _rows(store: Store, query: Executable) -> list[Any]:
    with Session(store.engine) as s:
        return list(s.execute(query))


# -- nodes -----------------------------------------------------------------------------------


def node_groups(store: Store) -> list[NodeGroup]:
    n = NodeRow
    clamped = case(
        (n.gpus_allocated < 0, 0),
        (n.gpus_allocated > n.gpu_count, n.gpu_count),
        else_=n.gpus_allocated,
    )
    allocated = case((n.state == Lifecycle.IN_SERVICE.value, clamped), else_=0)
    q = select(
        n.pool,
        n.gpu_model,
        n.state,
        func.count(),
        func.sum(n.gpu_count),
        func.sum(allocated),
        func.sum(case((n.automation_drain.is_(true()), 1), else_=0)),
        func.sum(case((n.deferred_reason != "", 1), else_=0)),
    ).group_by(n.pool, n.gpu_model, n.state)
    return [
        NodeGroup(pool, model, state, int(c), int(g or 0), int(a or 0), int(d or 0), int(w or 0))
        for pool, model, state, c, g, a, d, w in _rows(store, q)
    ]


def out_of_service(store: Store, states: Sequence[Lifecycle]) -> list[OutOfService]:
    n = NodeRow
    q = (
        select(n.name, n.pool, n.state, n.drain_owner, n.drain_reason)
        .where(n.state.in_([s.value for s in states]))
        .order_by(n.name)
    )
    return [
        OutOfService(name, pool, state, owner or "", reason or "")
        for name, pool, state, owner, reason in _rows(store, q)
    ]


def tenant_gpus(store: Store) -> dict[tuple[str, str, str], int]:
    """GPUs allocated by (tenant, pool, GPU model of the node)."""
    a, n = AllocationRow, NodeRow
    model = func.coalesce(n.gpu_model, "?")
    q = (
        select(a.tenant, a.pool, model, func.sum(a.gpus))
        .select_from(a)
        .outerjoin(n, n.name == a.node)
        .group_by(a.tenant, a.pool, model)
    )
    return {(t, p, m): int(g or 0) for t, p, m, g in _rows(store, q)}


def pool_modes(store: Store) -> dict[str, str]:
    return {name: mode for name, mode in _rows(store, select(PoolRow.name, PoolRow.mode))}


# -- events ----------------------------------------------------------------------------------


def _seconds(store: Store, later: Any, earlier: Any) -> ColumnElement[float]:
    """``later - earlier`` in seconds; both naive UTC timestamps as stored. (SQLite's
    julianday() resolves about 0.05 ms at today's dates: enough for these buckets.)"""
    if store.engine.dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(extract("epoch", later - earlier), Float)


def _parsed(store: Store, iso: ColumnElement[str]) -> Any:
    """An ISO-8601 text with an offset as a naive UTC timestamp, like the stored columns;
    NULL for text that is not one (a failed cast would fail the whole scrape)."""
    if store.engine.dialect.name == "sqlite":
        return iso  # julianday() reads the offset itself, and answers NULL to the rest
    looks_right = iso.regexp_match(
        r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    )
    parsed = func.timezone("UTC", cast(iso, TIMESTAMP(timezone=True)))
    return case((looks_right, parsed), else_=null())


def _histograms(
    store: Store, pools: Any, seconds: Any, where: Any, bounds: Sequence[float]
) -> dict[str, Histogram]:
    # Bucketed here, not in SQL: SQLite would work each row's seconds out again for every
    # bucket's sum (13 times over).
    by_pool: dict[str, list[float]] = defaultdict(list)
    for pool, s in _rows(store, select(pools, seconds).where(where)):
        if s is None:  # a time SQLite could not read: no figure, rather than no scrape
            continue
        # A clock stepping backwards must not make a sum that falls: negatives count as 0.
        by_pool[pool].append(max(0.0, float(s)))
    out = {}
    for pool, values in by_pool.items():
        values.sort()
        counts = tuple(bisect_right(values, b) for b in bounds)
        out[pool] = Histogram(counts, len(values), sum(values))
    return out


def _new_drain() -> ColumnElement[bool]:
    """A drain event that took a node out: not a retry moving work left running."""
    e = EventRow
    return and_(e.kind == EventKind.DRAIN, e.detail["moved"].as_string().is_(None))


def last_event_id(store: Store) -> int:
    return int(_rows(store, select(func.max(EventRow.id)))[0][0] or 0)


def detection_to_drain(
    store: Store, bounds: Sequence[float], span: Span = ALL
) -> dict[str, Histogram]:
    """Seconds from a finding known to the control plane (``detail.detected_at``) to the
    drain automation made for it; drains recorded without it are left out."""
    e = EventRow
    detected = e.detail["detected_at"].as_string()
    where = and_(span.holds(e.id), _new_drain(), e.actor == AUTOMATION, detected.is_not(None))
    return _histograms(
        store, e.pool, _seconds(store, e.at, _parsed(store, detected)), where, bounds
    )


def time_to_repair(store: Store, bounds: Sequence[float], span: Span = ALL) -> dict[str, Histogram]:
    """Seconds from a node's drain to its next resume, for resumes in ``span`` (the drain
    may be older); drains not yet resumed are left out."""
    e = EventRow
    resumed = select(e.node).where(e.kind == EventKind.RESUME, span.holds(e.id))
    steps = (
        select(
            e.pool,
            e.kind,
            e.at,
            func.lead(e.kind).over(partition_by=e.node, order_by=e.id).label("next_kind"),
            func.lead(e.at).over(partition_by=e.node, order_by=e.id).label("next_at"),
            func.lead(e.id).over(partition_by=e.node, order_by=e.id).label("next_id"),
        )
        .where(e.node.in_(resumed), or_(e.kind == EventKind.RESUME, _new_drain()))
        .subquery()
    )
    where = and_(
        steps.c.kind == EventKind.DRAIN,
        steps.c.next_kind == EventKind.RESUME,
        span.holds(steps.c.next_id),
    )
    seconds = _seconds(store, steps.c.next_at, steps.c.at)
    return _histograms(store, steps.c.pool, seconds, where, bounds)


def drain_counts(store: Store, span: Span = ALL) -> dict[tuple[str, str, str], int]:
    """Nodes taken out of service, by (pool, check, cause).

    cause: ``detail.cause`` when the event names it; else operator (a person's drain),
    adopted (a drain of ours found in the workload manager), fatal or consecutive (a
    finding), burn_in (a node's first burn-in: it never passed one) or periodic (a
    checkup). Burn-ins started on nodes already out are not drains."""
    e = EventRow
    given = e.detail["cause"].as_string()
    burn_in = case(
        (e.reason.like("%never passed one%"), literal("burn_in")),
        (e.reason.like("%periodic%"), literal("periodic")),
        else_=null(),
    )
    cause = case(
        (given.is_not(None), given),
        (e.kind == EventKind.BURN_IN_STARTED, burn_in),
        (e.reason.like("adopted:%"), literal("adopted")),
        (e.actor != AUTOMATION, literal("operator")),
        (e.detail["fatal"].as_boolean().is_(true()), literal("fatal")),
        else_=literal("consecutive"),
    )
    check = func.coalesce(e.detail["check"].as_string(), "")
    q = (
        select(e.pool, check, cause, func.count())
        .where(span.holds(e.id), or_(e.kind == EventKind.BURN_IN_STARTED, _new_drain()))
        .group_by(e.pool, check, cause)
    )
    return {(p, c, why): int(k) for p, c, why, k in _rows(store, q) if why is not None}


def would_act_counts(store: Store, span: Span = ALL) -> dict[tuple[str, str, str], int]:
    """Observe mode's decisions not carried out, by (pool, action, check)."""
    e = EventRow
    action = func.coalesce(e.detail["action"].as_string(), "")
    check = func.coalesce(e.detail["check"].as_string(), "")
    q = (
        select(e.pool, action, check, func.count())
        .where(span.holds(e.id), e.kind == WOULD_ACT)
        .group_by(e.pool, action, check)
    )
    return {(p, a, c): int(k) for p, a, c, k in _rows(store, q)}


def kind_counts(store: Store, span: Span = ALL) -> dict[tuple[str, str], int]:
    """Events by (pool, kind)."""
    e = EventRow
    q = select(e.pool, e.kind, func.count()).where(span.holds(e.id)).group_by(e.pool, e.kind)
    return {(p, k): int(n) for p, k, n in _rows(store, q)}


def held_counts(store: Store, span: Span = ALL) -> dict[str, int]:
    """Drains a brake held, by pool."""
    e = EventRow
    q = select(e.pool, func.count()).where(span.holds(e.id), e.kind == DRAIN_HELD).group_by(e.pool)
    return {p: int(k) for p, k in _rows(store, q)}


# -- incidents and leadership ----------------------------------------------------------------


def open_incidents(store: Store) -> list[OpenIncident]:
    i = IncidentRow
    q = (
        select(i.id, i.scope_kind, i.scope, i.pool, i.opened_at)
        .where(i.state == "open")
        .order_by(i.id)
    )
    return [OpenIncident(*row) for row in _rows(store, q)]


def leases(store: Store) -> list[Lease]:
    q = select(LeaseRow.name, LeaseRow.holder, LeaseRow.epoch, LeaseRow.expires_at)
    return [Lease(n, h, int(e), at) for n, h, e, at in _rows(store, q.order_by(LeaseRow.name))]
