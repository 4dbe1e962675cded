"""GPU time of pods, kept in the store as the control plane sees it, and tenants' budgets.

Kubernetes forgets a pod's lifetime when the pod is deleted, so the control plane counts
each pod's GPU time while it can see it (compute/services/usage_samples.py): per pod, how
far it has been counted (``gpu_usage_pods.counted_until``); per tenant, pool, GPU model and
UTC day, the GPU-microseconds used (``gpu_usage_days``); per tenant, the GPU-microseconds
since its budget's last reset (``tenant_budgets.gpu_us``).

Each interval of a pod is counted once, whoever counts it and however often: the pod's
mark moves forward only by a write conditional on the mark read (an insert that does
nothing when the pod is there already), in the same transaction as the GPU time it adds;
a write that finds the mark moved adds nothing. Two replicas, or a restart half-way through,
count nothing twice. Integers of GPU-microseconds, so sums are exact.

Marks of pods not counted for `RETENTION` go; a pod first seen counts from the start of
`RETENTION` at the earliest, so a pod whose mark went is never counted again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.orm import Session

from compute.domain import Event
from compute.store.models import GpuUsageDayRow, GpuUsagePodRow, TenantBudgetRow
from compute.store.repository import Store, Tx
from compute.store.rows import table_of
from compute.store.upsert import upsert

RETENTION = timedelta(days=31)
# Pods per transaction: a sweep over many pods never holds the store's write lock long.
BATCH = 500
_DAY = timedelta(days=1)


class Held(Protocol):
    """GPUs one pod held over [start, end) (`scheduler.kubernetes.usage.PodSpan`)."""

    @property
    def uid(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def pool(self) -> str: ...
    @property
    def gpu_model(self) -> str: ...
    @property
    def gpus(self) -> int: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    pool: str
    gpu_model: str
    gpu_us: int
    tenant: str = ""


@dataclass(frozen=True, slots=True)
class Budget:
    tenant: str
    gpu_us: int
    since: datetime
    level: int
    stopped: bool
    changed_at: datetime


def micros(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def split_days(start: datetime, end: datetime) -> Iterator[tuple[date, int]]:
    """(UTC day, microseconds) of [start, end), cut at UTC midnights."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    while start < end:
        piece = min(end, datetime.combine(start.date() + _DAY, time(), UTC))
        yield start.date(), micros(piece - start)
        start = piece


_PODS = table_of(GpuUsagePodRow)
_DAYS = table_of(GpuUsageDayRow)
_BUDGETS = table_of(TenantBudgetRow)


@dataclass(frozen=True, slots=True)
class _Step:
    held: Held
    start: datetime
    end: datetime


def _steps(conn: Connection, batch: Sequence[Held], now: datetime) -> list[_Step]:
    """Move the batch's marks and say which pods' time to add: the marks are read locked
    (PostgreSQL: FOR UPDATE, in uid order, so replicas queue and never cross; SQLite: a
    write transaction holds the database's lock from its start), so a mark read is the
    mark moved; a pod without one is counted only where this insert made its mark (one
    made meanwhile by another replica gives nothing back, and that replica counts it)."""
    horizon = now - RETENTION
    q = select(_PODS.c.uid, _PODS.c.counted_until).where(_PODS.c.uid.in_([h.uid for h in batch]))
    marks = {u: t for u, t in conn.execute(q.order_by(_PODS.c.uid).with_for_update())}
    moved: list[_Step] = []
    fresh: dict[str, _Step] = {}
    last = None
    for h in batch:  # in uid order
        if h.uid == last:
            continue  # the same pod twice in one read counts once
        last = h.uid
        mark = marks.get(h.uid)
        step = _Step(h, mark if mark is not None else max(h.start, horizon), min(h.end, now))
        if step.end <= step.start or h.gpus <= 0:
            continue
        if mark is None:
            fresh[h.uid] = step
        else:
            moved.append(step)
    if moved:
        conn.execute(
            update(_PODS)
            .where(_PODS.c.uid == bindparam("b_uid"))
            .values(counted_until=bindparam("b_to", type_=_PODS.c.counted_until.type)),
            [{"b_uid": m.held.uid, "b_to": m.end} for m in moved],
        )
    if fresh:
        made = conn.execute(
            upsert(conn, _PODS)
            .on_conflict_do_nothing(index_elements=["uid"])
            .returning(_PODS.c.uid),
            [
                {
                    "uid": f.held.uid,
                    "tenant": f.held.tenant,
                    "pool": f.held.pool,
                    "gpu_model": f.held.gpu_model,
                    "gpus": f.held.gpus,
                    "counted_until": f.end,
                }
                for f in fresh.values()
            ],
        )
        moved += [fresh[uid] for (uid,) in made]
    return moved


def _add(conn: Connection, steps: Sequence[_Step], now: datetime) -> None:
    """Add the steps' GPU time to the days and the tenants' budgets, in key order."""
    days: dict[tuple[str, str, str, date], int] = {}
    totals: dict[str, int] = {}
    for m in steps:
        h = m.held
        for day, us in split_days(m.start, m.end):
            key = (h.tenant, h.pool, h.gpu_model, day)
            days[key] = days.get(key, 0) + h.gpus * us
            totals[h.tenant] = totals.get(h.tenant, 0) + h.gpus * us
    if not days:
        return
    # One statement each, many rows (a statement built per row cost most of a sample);
    # in key order, so replicas adding at once take the rows' locks in the same order.
    ins = upsert(conn, _DAYS)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["tenant", "pool", "gpu_model", "day"],
            set_={"gpu_us": _DAYS.c.gpu_us + ins.excluded.gpu_us},
        ),
        [
            {"tenant": t, "pool": p, "gpu_model": m, "day": day, "gpu_us": us}
            for (t, p, m, day), us in sorted(days.items())
        ],
    )
    ins = upsert(conn, _BUDGETS)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["tenant"], set_={"gpu_us": _BUDGETS.c.gpu_us + ins.excluded.gpu_us}
        ),
        [
            {
                "tenant": t,
                "gpu_us": us,
                "since": now,
                "level": 0,
                "stopped": False,
                "changed_at": now,
            }
            for t, us in sorted(totals.items())
        ],
    )


def record(store: Store, held: Sequence[Held], now: datetime) -> int:
    """Count what each pod held up to its end, or ``now`` while it runs, from its mark (or
    its start, within `RETENTION`), once; then drop marks older than `RETENTION`.
    Returns how many pods added time."""
    ordered = sorted(held, key=lambda h: h.uid)
    counted = 0
    for at in range(0, len(ordered), BATCH):
        with store.transaction() as tx:
            conn = tx.s.connection()
            steps = _steps(conn, ordered[at : at + BATCH], now)
            _add(conn, steps, now)
            counted += len(steps)
    with store.transaction() as tx:
        tx.s.execute(delete(_PODS).where(_PODS.c.counted_until < now - RETENTION))
    return counted


def marks(store: Store, tenant: str | None) -> dict[str, datetime]:
    """pod uid → how far it is counted, of the tenant's pods (every tenant's: None)."""
    q = select(GpuUsagePodRow.uid, GpuUsagePodRow.counted_until)
    if tenant is not None:
        q = q.where(GpuUsagePodRow.tenant == tenant)
    with Session(store.engine) as s:
        return {uid: until for uid, until in s.execute(q)}


def days(store: Store, tenant: str | None, first: date, last: date) -> list[DayUsage]:
    """The tenant's (every tenant's: None) counted GPU time per day, pool and model, days
    ``first``..``last``."""
    q = select(GpuUsageDayRow).where(GpuUsageDayRow.day >= first, GpuUsageDayRow.day <= last)
    if tenant is not None:
        q = q.where(GpuUsageDayRow.tenant == tenant)
    order = (GpuUsageDayRow.day, GpuUsageDayRow.tenant, GpuUsageDayRow.pool)
    with Session(store.engine) as s:
        return [
            DayUsage(r.day, r.pool, r.gpu_model, r.gpu_us, r.tenant)
            for r in s.scalars(q.order_by(*order))
        ]


# -- budgets ---------------------------------------------------------------------------------


def _budget(r: TenantBudgetRow) -> Budget:
    return Budget(r.tenant, r.gpu_us, r.since, r.level, r.stopped, r.changed_at)


def budgets(store: Store) -> dict[str, Budget]:
    with Session(store.engine) as s:
        return {r.tenant: _budget(r) for r in s.scalars(select(TenantBudgetRow))}


def track(store: Store, tenant: str, now: datetime) -> None:
    """A row for the tenant, counting from ``now``, if it has none yet."""
    with store.transaction() as tx:
        tx.s.execute(
            upsert(tx.s.connection(), TenantBudgetRow)
            .values(tenant=tenant, gpu_us=0, since=now, level=0, stopped=False, changed_at=now)
            .on_conflict_do_nothing(index_elements=["tenant"])
        )


def move_level(
    store: Store, tenant: str, expect: int, to: int, at: datetime, events: Sequence[Event]
) -> bool:
    """Record the tenant's threshold ``to`` with its events if it still is ``expect``:
    whoever gets there first records them, once."""
    with store.transaction() as tx:
        done = tx.s.execute(
            update(TenantBudgetRow)
            .where(TenantBudgetRow.tenant == tenant, TenantBudgetRow.level == expect)
            .values(level=to, changed_at=at)
            .returning(TenantBudgetRow.tenant)
        ).first()
        if done is None:
            return False
        tx.add_events(events)
        return True


def set_stopped(
    store: Store,
    tenant: str,
    stopped: bool,
    at: datetime,
    record: Callable[[Tx], None] | None = None,
) -> None:
    """Record whether the tenant's new GPU pods are held back; ``record(tx)`` with it."""
    with store.transaction() as tx:
        tx.s.execute(
            update(TenantBudgetRow)
            .where(TenantBudgetRow.tenant == tenant)
            .values(stopped=stopped, changed_at=at)
        )
        if record is not None:
            record(tx)


def reset(
    store: Store, tenant: str, at: datetime, record: Callable[[Tx], None] | None = None
) -> bool:
    """Count the tenant's budget from ``at`` again (its daily usage stays); ``record(tx)``
    in the same transaction. False when the tenant has no budget row."""
    with store.transaction() as tx:
        done = tx.s.execute(
            update(TenantBudgetRow)
            .where(TenantBudgetRow.tenant == tenant)
            .values(gpu_us=0, since=at, changed_at=at)
            .returning(TenantBudgetRow.tenant)
        ).first()
        if done is None:
            return False
        if record is not None:
            record(tx)
        return True
