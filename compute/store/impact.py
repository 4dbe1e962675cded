"""Job impact, kept: which jobs and pods a node's fault hit (compute/services/job_impact.py).

What one look finds is added with the mark moved in the same transaction, and only if the
mark is still where the look read it: two replicas, or two sweeps, never record a hit
twice. A job is recorded once (its pool and id are the key): the first fault that hit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from compute.domain import Event, EventKind
from compute.store.impact_models import JobHitMarkRow, JobHitRow
from compute.store.models import CheckResultRow, EventRow, NodeRow
from compute.store.repository import Store
from compute.store.rows import event_from_row, table_of
from compute.store.upsert import upsert

MARK = "fleet"
DRAIN, NODE_FAIL = "drain", "node_fail"
_HITS = table_of(JobHitRow)
_MARKS = table_of(JobHitMarkRow)
# Drain causes that are a fault of the node (an operator's drain is not).
FAULT_CAUSES = frozenset({"fatal", "consecutive", "nvlink_domain"})
# Drain events `drains_of` reads at once: a look's fault drains and their retries (one
# more each time a disruption budget lets a pod go).
DRAINS_KEPT = 5000


@dataclass(frozen=True, slots=True)
class JobHit:
    pool: str
    work: str
    tenant: str
    node: str
    cause: str
    at: datetime
    gpus: int
    start: datetime
    end: datetime | None
    state: str
    gpu_hours: float
    check: str
    reason: str
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    last_event_id: int
    failed_until: datetime


def mark(store: Store) -> Mark | None:
    """How far drains and failed work are looked at; None before the first look."""
    with Session(store.engine) as s:
        row = s.execute(
            select(_MARKS.c.last_event_id, _MARKS.c.failed_until).where(_MARKS.c.name == MARK)
        ).first()
    return Mark(row[0], row[1]) if row is not None else None


def start(store: Store, at: Mark) -> bool:
    """The first mark; False when there is one already (another replica made it)."""
    with store.transaction() as tx:
        conn = tx.s.connection()
        made = conn.execute(
            upsert(conn, _MARKS)
            .values(name=MARK, last_event_id=at.last_event_id, failed_until=at.failed_until)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(_MARKS.c.name)
        ).first()
        return made is not None


def record(store: Store, expect: Mark, to: Mark, hits: Sequence[JobHit]) -> bool:
    """Add ``hits`` (a job already recorded keeps its first hit) and move the mark from
    ``expect`` to ``to``, in one transaction; False, adding nothing, when the mark moved."""
    with store.transaction() as tx:
        conn = tx.s.connection()
        moved = conn.execute(
            update(_MARKS)
            .where(
                _MARKS.c.name == MARK,
                _MARKS.c.last_event_id == expect.last_event_id,
                _MARKS.c.failed_until == expect.failed_until,
            )
            .values(last_event_id=to.last_event_id, failed_until=to.failed_until)
            .returning(_MARKS.c.name)
        ).first()
        if moved is None:
            return False
        if hits:
            ins = upsert(conn, _HITS)
            rows = {(h.pool, h.work): _values(h) for h in hits}  # one per key, the first
            conn.execute(
                ins.on_conflict_do_nothing(index_elements=["pool", "work"]),
                [rows[k] for k in sorted(rows)],
            )
        return True


def _values(h: JobHit) -> dict[str, object]:
    return {
        "pool": h.pool, "work": h.work, "tenant": h.tenant, "node": h.node, "cause": h.cause,
        "at": h.at, "gpus": h.gpus, "start": h.start, "end": h.end, "state": h.state,
        "gpu_hours": h.gpu_hours, "check": h.check[:64], "reason": h.reason,
        "event_id": h.event_id,
    }  # fmt: skip


def last_event_id(store: Store) -> int:
    with Session(store.engine) as s:
        return int(s.scalar(select(func.max(EventRow.id))) or 0)


def pools_of(store: Store, names: set[str]) -> dict[str, str]:
    """Node → pool, of those of ``names`` the store knows."""
    if not names:
        return {}
    with Session(store.engine) as s:
        q = select(NodeRow.name, NodeRow.pool).where(NodeRow.name.in_(sorted(names)))
        return {str(n): str(p) for n, p in s.execute(q)}


def fault_drains(
    store: Store, after_id: int, up_to_id: int, since: datetime, again_since: datetime, limit: int
) -> list[Event]:
    """Drains computectl made for a node's fault, at or after ``since``, with an id in
    (``after_id``, ``up_to_id``] or recorded at or after ``again_since`` (a transaction that
    took its id before others committed after them: looked at again, recorded once),
    oldest first (at most ``limit``)."""
    q = (
        select(EventRow)
        .where(
            EventRow.kind == EventKind.DRAIN,
            EventRow.at >= since,
            EventRow.id <= up_to_id,
            or_(EventRow.id > after_id, EventRow.at >= again_since),
        )
        .order_by(EventRow.id)
        .limit(limit)
    )
    with Session(store.engine) as s:
        events = [event_from_row(r) for r in s.scalars(q)]
    return [e for e in events if e.detail.get("cause") in FAULT_CAUSES]


def drains_of(store: Store, nodes: set[str], from_id: int, up_to_id: int) -> list[Event]:
    """The drain events of ``nodes`` with an id in [``from_id``, ``up_to_id``], oldest first
    (at most `DRAINS_KEPT`): fault drains and the retries that followed them, each with the
    work it ended in its detail."""
    if not nodes:
        return []
    q = (
        select(EventRow)
        .where(
            EventRow.kind == EventKind.DRAIN,
            EventRow.node.in_(sorted(nodes)),
            EventRow.id >= from_id,
            EventRow.id <= up_to_id,
        )
        .order_by(EventRow.id)
        .limit(DRAINS_KEPT)
    )
    with Session(store.engine) as s:
        return [event_from_row(r) for r in s.scalars(q)]


def finding(store: Store, node: str, since: datetime, until: datetime) -> tuple[str, str] | None:
    """The node's latest finding in [since, until]: a failed check, else a fault drain of
    it; (check, what it said), or None. A check that could not run is no finding."""
    with Session(store.engine) as s:
        row = s.execute(
            select(CheckResultRow.check, CheckResultRow.evidence)
            .where(
                CheckResultRow.node == node,
                CheckResultRow.status == "fail",
                CheckResultRow.at >= since,
                CheckResultRow.at <= until,
            )
            .order_by(CheckResultRow.at.desc())
            .limit(1)
        ).first()
        if row is not None:
            return str(row[0]), str(row[1])
        drains = s.scalars(
            select(EventRow)
            .where(
                EventRow.node == node,
                EventRow.kind == EventKind.DRAIN,
                EventRow.at >= since,
                EventRow.at <= until,
            )
            .order_by(EventRow.id.desc())
        )
        for r in drains:
            e = event_from_row(r)
            if e.detail.get("cause") in FAULT_CAUSES:
                return str(e.detail.get("check") or ""), e.reason
    return None


def hits(
    store: Store,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[JobHit]:
    """Hits, newest first; of ``tenant`` and in [since, until) when given."""
    q = select(JobHitRow)
    if tenant is not None:
        q = q.where(JobHitRow.tenant == tenant)
    if since is not None:
        q = q.where(JobHitRow.at >= since)
    if until is not None:
        q = q.where(JobHitRow.at < until)
    with Session(store.engine) as s:
        rows = s.scalars(q.order_by(JobHitRow.at.desc(), JobHitRow.work).limit(limit))
        return [_hit(r) for r in rows]


def _hit(r: JobHitRow) -> JobHit:
    return JobHit(
        r.pool, r.work, r.tenant, r.node, r.cause, r.at, r.gpus, r.start, r.end, r.state,
        r.gpu_hours, r.check, r.reason, r.event_id,
    )  # fmt: skip


def tally(store: Store, tenant: str, since: datetime, until: datetime) -> tuple[int, float]:
    """How many hits ``tenant`` had in [since, until), and the GPU-hours they lost."""
    q = select(func.count(), func.sum(JobHitRow.gpu_hours)).where(
        JobHitRow.tenant == tenant, JobHitRow.at >= since, JobHitRow.at < until
    )
    with Session(store.engine) as s:
        row = s.execute(q).one()
    return int(row[0] or 0), float(row[1] or 0.0)


def lost_totals(store: Store) -> list[tuple[str, str, float, int]]:
    """(tenant, cause, GPU-hours, hits) over every hit kept: the counters of /metrics."""
    q = (
        select(JobHitRow.tenant, JobHitRow.cause, func.sum(JobHitRow.gpu_hours), func.count())
        .group_by(JobHitRow.tenant, JobHitRow.cause)
        .order_by(JobHitRow.tenant, JobHitRow.cause)
    )
    with Session(store.engine) as s:
        return [(str(t), str(c), float(h or 0.0), int(n)) for t, c, h, n in s.execute(q)]
