"""Which fault hit which job: the jobs and pods on a node computectl drained for a fault,
and work that ended because its node failed, per tenant with the GPU-hours lost.

After each sweep, by the acting control plane: the fault drains recorded since the mark
(events carry the node, time and reason) are looked up in the node's workload manager —
what ran on the node at the drain (Slurm: squeue now, and sacct over the node and the
window, which catches jobs already ended; Kubernetes: the pods the API still holds) — and
in the drain events themselves, which keep the work the drain, and its retries, ended
(compute/services/drain_work.py: the pods a drain evicted, gone from the API, found by
whichever replica looks) — and work that ended because its node failed
(Slurm NODE_FAIL, a pod Failed) on a node with a finding near its end is linked to that
finding. Lost GPU-hours are the work's GPUs from its start to the drain (or to its end).
The mark moves with the hits in one conditional write, so two sweeps never record twice.
A backend that cannot be read holds the mark before its drain; the next sweep tries again.
"""

from __future__ import annotations

import logging
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from compute.domain import Event
from compute.errors import InvalidInput, NotFoundError
from compute.services.drain_work import stored_work
from compute.store import Store
from compute.store import impact as kept
from scheduler.errors import SchedulerError
from scheduler.protocol import WorkloadManager
from scheduler.work import NodeWork, WorkHistory, WorkRead

if TYPE_CHECKING:
    from compute.runtime import Runtime

_log = logging.getLogger("computectl")

# How far back the first look goes (a new install's recent drains), and how many drains
# one sweep looks up (the rest wait for the next).
FIRST_LOOK = timedelta(days=1)
DRAINS_PER_SWEEP = 200
# A finding links a node failure when it came this long before the work ended, or shortly
# after (a check posted right after the node came back).
FINDING_BEFORE, FINDING_AFTER = timedelta(hours=24), timedelta(minutes=30)
# Work that started this much after the drain's time (clock skew between computectl and
# the workload manager aside) was not on the node when it was drained.
SKEW = timedelta(seconds=2)
# Drains recorded, and work ended, this long before the last look are looked at again
# (recorded once).
OVERLAP = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Look:
    hits: list[kept.JobHit]
    last_event_id: int
    errors: list[str]


def _skipped(read: WorkRead, what: str) -> None:
    if read.skipped:
        _log.warning("job impact: %s: %d entries could not be read, skipped", what, read.skipped)


def drain_hits(event: Event, work: Iterable[NodeWork]) -> list[kept.JobHit]:
    """The work on the node when ``event`` drained it, with the GPU-hours it lost."""
    out = []
    for w in work:
        if w.start > event.at + SKEW or (w.end is not None and w.end < event.at - SKEW):
            continue
        out.append(
            kept.JobHit(
                event.pool,
                w.id,
                w.tenant,
                event.node,
                kept.DRAIN,
                event.at,
                w.gpus,
                w.start,
                w.end,
                w.state,
                round(w.gpu_hours_until(event.at), 6),
                str(event.detail.get("check") or ""),
                event.reason,
                event.id,
            )
        )
    return out


def gone_since(
    drain: Event, drains: Iterable[Event], present: set[str], now: datetime
) -> list[NodeWork]:
    """The work ``drain`` and the drains of its node after it (retries: a disruption budget
    let a pod go) ended, as their events keep it, but for the work in ``present`` (the
    workload manager's answer wins), each once."""
    out: list[NodeWork] = []
    seen = set(present)
    for d in drains:
        if d.node != drain.node or (d.id or 0) < (drain.id or 0):
            continue
        read = stored_work(d.detail, d.node)
        _skipped(read, f"work kept with drain event {d.id} of {d.node}")
        for w in read.work:
            if w.id in seen or w.end is None or not drain.at - SKEW <= w.end <= now:
                continue
            seen.add(w.id)
            out.append(w)
    return out


def look_at_drains(
    store: Store,
    managers: dict[str, WorkloadManager],
    was: kept.Mark,
    now: datetime,
) -> Look:
    """The hits of fault drains since the mark; stops at the first drain whose backend
    could not be read (the mark stays before it)."""
    top = kept.last_event_id(store)  # before the read: an event after it waits for the next
    again = was.failed_until - OVERLAP
    events = kept.fault_drains(
        store, was.last_event_id, top, now - FIRST_LOOK, again, DRAINS_PER_SWEEP
    )
    hits: list[kept.JobHit] = []
    last = was.last_event_id
    # The work each drain, and the retries after it, ended: kept with their events.
    first = min((e.id or 0 for e in events), default=top + 1)
    ended = kept.drains_of(store, {e.node for e in events}, first, top)
    for e in events:
        work: list[NodeWork] = []
        manager = managers.get(e.pool)
        if isinstance(manager, WorkHistory):
            try:
                read = manager.work_on(e.node, e.at - SKEW, now)
            except SchedulerError as exc:
                return Look(hits, last, [f"job impact: {e.node}: what ran there: {exc}"])
            _skipped(read, f"what ran on {e.node}")
            work = read.work
        hits += drain_hits(e, work + gone_since(e, ended, {w.id for w in work}, now))
        last = max(last, e.id or 0)
    # Every drain up to ``top`` looked at: the events of other kinds need no look.
    return Look(hits, top if len(events) < DRAINS_PER_SWEEP else last, [])


def look_at_failures(
    store: Store, rt_groups: Iterable[tuple[WorkloadManager, set[str]]], since: datetime,
    until: datetime,
) -> tuple[list[kept.JobHit], list[str]]:  # fmt: skip
    """Work that ended because its node failed in [since, until], on a node of ours with a
    finding near its end."""
    hits: list[kept.JobHit] = []
    errors: list[str] = []
    for manager, _pools in rt_groups:
        if not isinstance(manager, WorkHistory):
            continue
        try:
            read = manager.failed_work(since, until)
        except SchedulerError as exc:
            errors.append(f"job impact: failed work of {manager.kind}: {exc}")
            continue
        _skipped(read, f"failed work of {manager.kind}")
        pool_of = kept.pools_of(store, {w.node for w in read.work})
        for w in read.work:
            pool = pool_of.get(w.node)
            if pool is None or w.end is None or not since <= w.end <= until:
                continue
            found = kept.finding(store, w.node, w.end - FINDING_BEFORE, w.end + FINDING_AFTER)
            if found is None:
                continue
            hits.append(
                kept.JobHit(
                    pool,
                    w.id,
                    w.tenant,
                    w.node,
                    kept.NODE_FAIL,
                    w.end,
                    w.gpus,
                    w.start,
                    w.end,
                    w.state,
                    round(w.gpu_hours_until(w.end), 6),
                    found[0],
                    found[1][:2000],
                    None,
                )
            )
    return hits, errors


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: what could not be looked up, one line
    each (the next sweep tries again)."""
    now = rt.clock.now()
    was = kept.mark(rt.store)
    if was is None:
        kept.start(rt.store, kept.Mark(0, now - FIRST_LOOK))
        was = kept.mark(rt.store)
        if was is None:
            return []
    drains = look_at_drains(rt.store, rt.backends.by_pool, was, now)
    # Again from a little before the last look: the accounting hears of an end late.
    since = was.failed_until - OVERLAP
    failed, errors = look_at_failures(rt.store, rt.backends.groups(), since, now)
    # A failure look that could not read a backend keeps its window for the next sweep.
    failed_until = now if not errors else was.failed_until
    kept.record(rt.store, was, kept.Mark(drains.last_event_id, failed_until), drains.hits + failed)
    return drains.errors + errors


# -- reads for the front ends --------------------------------------------------------------------


def month_bounds(month: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``YYYY-MM`` (None: this month) → [first instant, first of the next) in UTC.
    ValueError for anything else."""
    if month is None:
        year, mon = now.astimezone(UTC).year, now.astimezone(UTC).month
    else:
        parts = month.split("-")
        if len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2:
            raise ValueError(f"month {month[:20]!r} is not YYYY-MM")
        if not (parts[0].isdigit() and parts[1].isdigit()):
            raise ValueError(f"month {month[:20]!r} is not YYYY-MM")
        year, mon = int(parts[0]), int(parts[1])
        if not 1 <= mon <= 12 or year < 1970:
            raise ValueError(f"month {month!r} is not YYYY-MM")
    first = datetime(year, mon, 1, tzinfo=UTC)
    return first, first + timedelta(days=monthrange(year, mon)[1])


# Incidents a month's list shows, newest first (the month's figure counts them all).
SHOWN = 1000


@dataclass(frozen=True, slots=True)
class TenantImpact:
    tenant: str
    month: str  # YYYY-MM
    gpu_hours_lost: float
    count: int  # hits in the month; ``hits`` holds the newest `SHOWN` of them
    hits: list[kept.JobHit]


def tenant_impact(store: Store, tenant: str, month: str | None, now: datetime) -> TenantImpact:
    """The tenant's hits in ``month`` (None: this month) and the GPU-hours they lost.
    NotFoundError for a tenant the store does not know; InvalidInput for a month that is
    not YYYY-MM."""
    if store.tenant(tenant) is None:
        raise NotFoundError(f"no tenant {tenant}")
    try:
        since, until = month_bounds(month, now)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    count, hours = kept.tally(store, tenant, since, until)
    found = kept.hits(store, tenant, since, until, limit=SHOWN)
    return TenantImpact(tenant, since.strftime("%Y-%m"), round(hours, 6), count, found)


def hit_view(h: kept.JobHit) -> dict[str, object]:
    return {
        "work": h.work, "pool": h.pool, "node": h.node, "tenant": h.tenant, "cause": h.cause,
        "at": h.at.isoformat(), "gpus": h.gpus, "start": h.start.isoformat(),
        "end": h.end.isoformat() if h.end is not None else None, "state": h.state,
        "gpu_hours_lost": h.gpu_hours, "check": h.check, "reason": h.reason,
    }  # fmt: skip


def impact_view(ti: TenantImpact) -> dict[str, object]:
    """What the API, the CLI and the portal show of a tenant's month."""
    return {
        "tenant": ti.tenant,
        "month": ti.month,
        "gpu_hours_lost": ti.gpu_hours_lost,
        "count": ti.count,
        "incidents": [hit_view(h) for h in ti.hits],
    }
