"""A tenant's GPU-hours per UTC day, pool, GPU model and backend, from every backend that
accounts for GPU usage (`scheduler.usage.UsageSource`: Slurm's sacct, Kubernetes' pods, the
simulation's jobs).

Each record is split at UTC midnights exactly (whole microseconds, so the days of a record
add up to the record). A backend that cannot be read costs its own rows only: the answer
carries a note saying so, and the other backends' rows. Kubernetes keeps no accounting:
its GPU time is what the control plane counted each sweep (compute/services/usage_samples.py)
plus, for pods still there, what they held since.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from compute.errors import InvalidInput, NotFoundError
from compute.services import usage_samples as samples
from scheduler.errors import SchedulerError
from scheduler.usage import UsageRecord, UsageSource

if TYPE_CHECKING:
    from compute.runtime import Runtime

MAX_DAYS = 93
_DAY = timedelta(days=1)
_US_PER_HOUR = 3_600_000_000
# What a backend cannot know, said beside its rows.
_CAVEATS = {
    "kubernetes": "kubernetes: pods deleted before now are not counted (Kubernetes keeps "
    "no accounting of them)",
    "simulated": "simulated: jobs that have ended are not counted (the simulation forgets them)",
}


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: date  # UTC
    pool: str
    gpu_model: str
    gpu_hours: float
    source: str  # the backend: "slurm", "kubernetes", "simulated"


@dataclass(frozen=True, slots=True)
class TenantUsage:
    tenant: str
    since: datetime
    until: datetime
    days: int
    rows: list[UsageRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _micros(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def split_days(rec: UsageRecord, since: datetime, until: datetime) -> Iterator[tuple[date, int]]:
    """(UTC day, GPU-microseconds) of the record inside [since, until), day by day."""
    start = max(rec.start, since).astimezone(UTC)
    end = min(rec.end, until).astimezone(UTC)
    while start < end:
        midnight = datetime.combine(start.date() + _DAY, time(), UTC)
        piece = min(end, midnight)
        yield start.date(), rec.gpus * _micros(piece - start)
        start = piece


def summarise(
    tagged: Iterable[tuple[str, UsageRecord]], since: datetime, until: datetime
) -> list[UsageRow]:
    """Rows of (source, record) pairs: one per day, pool, model and source that used GPUs."""
    sums: dict[tuple[date, str, str, str], int] = {}
    for source, rec in tagged:
        for day, us in split_days(rec, since, until):
            key = (day, rec.pool, rec.gpu_model, source)
            sums[key] = sums.get(key, 0) + us
    return [
        UsageRow(day, pool, model, us / _US_PER_HOUR, source)
        for (day, pool, model, source), us in sorted(sums.items())
        if us > 0
    ]


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """From UTC midnight ``days - 1`` days before ``now``'s day, to ``now``."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be 1 to {MAX_DAYS}, not {days}")
    now = now.astimezone(UTC)
    first = datetime.combine(now.date() - (days - 1) * _DAY, time(), UTC)
    return first, now


def date_window(now: datetime, first: date, last: date) -> tuple[datetime, datetime]:
    """UTC days ``first``..``last`` (both included) up to ``now``: at most `MAX_DAYS` days,
    none after today."""
    now = now.astimezone(UTC)
    if last < first:
        raise InvalidInput(f"the window ends ({last}) before it starts ({first})")
    if last > now.date():
        raise InvalidInput(f"the window ends ({last}) after today ({now.date()}, UTC)")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"the window is {(last - first).days + 1} days; at most {MAX_DAYS}")
    return datetime.combine(first, time(), UTC), min(
        now, datetime.combine(last + _DAY, time(), UTC)
    )


def read_usage(
    sources: Iterable[tuple[UsageSource, set[str]]],
    tenant: str | None,
    since: datetime,
    until: datetime,
) -> tuple[list[tuple[str, UsageRecord]], list[str]]:
    """Every source's records of ``tenant`` (every tenant's: None) in its own pools, and the
    notes of what could not be read."""
    tagged: list[tuple[str, UsageRecord]] = []
    notes: list[str] = []
    for source, pools in sources:
        try:
            read = source.usage(since, until, tenant)
        except SchedulerError as exc:
            notes.append(f"{source.kind}: usage cannot be read now: {exc}")
            continue
        tagged += [
            (source.kind, r)
            for r in read.records
            if (tenant is None or r.tenant == tenant) and r.pool in pools
        ]
        if read.skipped:
            notes.append(
                f"{source.kind}: {read.skipped} record(s) could not be read and are left out"
            )
        if source.kind in _CAVEATS and _CAVEATS[source.kind] not in notes:
            notes.append(_CAVEATS[source.kind])
    return tagged, notes


def usage_sources(rt: Runtime) -> list[tuple[UsageSource, set[str]]]:
    """Each pool's usage source once, with the pools it serves (compute.backends)."""
    return rt.backends.usage_groups()


def tenant_usage(rt: Runtime, tenant: str, days: int = 7) -> TenantUsage:
    """The tenant's GPU-hours over the last ``days`` UTC days (today so far included):
    what the backends account for, and for Kubernetes what the control plane counted
    (compute/services/usage_samples.py)."""
    if rt.store.tenant(tenant) is None:
        raise NotFoundError(f"unknown tenant {tenant!r}")
    since, until = window(rt.clock.now(), days)
    sources = usage_sources(rt)
    sampled = [(s, p) for s, p in sources if isinstance(s, samples.SampledUsage)]
    read = [(s, p) for s, p in sources if not isinstance(s, samples.SampledUsage)]
    tagged, notes = read_usage(read, tenant, since, until)
    rows = summarise(tagged, since, until)
    if sampled:
        got = samples.counted(rt.store, sampled, tenant, since, until)
        kinds = {pool: s.kind for s, pools in sampled for pool in pools}
        rows = sorted(
            rows
            + [
                UsageRow(day, pool, model, samples.hours(us), kinds[pool])
                for (day, pool, model), us in got.us.items()
                if us > 0
            ],
            key=lambda r: (r.day, r.pool, r.gpu_model, r.source),
        )
        notes += got.notes
    if not sources:
        notes.append("no pool reports GPU usage")
    return TenantUsage(tenant, since, until, days, rows, notes)


@dataclass(frozen=True, slots=True)
class AllUsage:
    """GPU-hours per tenant, UTC day, pool, GPU model and backend over [since, until)."""

    since: datetime
    until: datetime
    rows: list[tuple[str, UsageRow]]
    notes: list[str]


def usage_of(rt: Runtime, tenant: str | None, since: datetime, until: datetime) -> AllUsage:
    """`tenant_usage` over any window, of one tenant or of every tenant (None): one read of
    each backend either way (a billing export of many tenants never reads sacct per
    tenant)."""
    sources = usage_sources(rt)
    sampled = [(s, p) for s, p in sources if isinstance(s, samples.SampledUsage)]
    read = [(s, p) for s, p in sources if not isinstance(s, samples.SampledUsage)]
    tagged, notes = read_usage(read, tenant, since, until)
    by_tenant: dict[str, list[tuple[str, UsageRecord]]] = {}
    for kind, rec in tagged:
        by_tenant.setdefault(rec.tenant, []).append((kind, rec))
    rows = [(t, r) for t, recs in by_tenant.items() for r in summarise(recs, since, until)]
    if sampled:
        got = samples.counted_all(rt.store, sampled, tenant, since, until)
        kinds = {pool: s.kind for s, pools in sampled for pool in pools}
        rows += [
            (t, UsageRow(day, pool, model, samples.hours(us), kinds[pool]))
            for (t, day, pool, model), us in got.us.items()
            if us > 0
        ]
        notes += got.notes
    if not sources:
        notes.append("no pool reports GPU usage")
    rows.sort(key=lambda tr: (tr[0], tr[1].day, tr[1].pool, tr[1].gpu_model, tr[1].source))
    return AllUsage(since, until, rows, notes)
