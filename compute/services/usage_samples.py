"""Kubernetes tenants' GPU time, kept: each sweep the acting control plane reads every
tenant pod holding GPUs and counts, in the store, what it held since it was last counted
(compute/store/usage.py). A pod deleted afterwards stays counted; a pod deleted between two
samples loses only the time since the last one (at most one sweep interval), and one
created and deleted between two samples is never seen.

A usage source that can be sampled (`SampledUsage`: `scheduler.kubernetes.usage.
KubernetesUsage`) is read this way; the report of a tenant's usage then gives the counted
days plus, for the pods still there, what they held since they were last counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from compute.backends import Backends
from compute.services.safe_text import safe
from compute.store import Store
from compute.store import usage as kept
from scheduler.errors import SchedulerError

_US_PER_HOUR = 3_600_000_000
NOTE = (
    "kubernetes: GPU time is counted each sweep from the pods present; a pod deleted "
    "between two sweeps loses the time since the last"
)


class Spans(Protocol):
    @property
    def spans(self) -> Sequence[kept.Held]: ...
    @property
    def skipped(self) -> int: ...


@runtime_checkable
class SampledUsage(Protocol):
    """A usage source whose pods the control plane counts itself, and whose tenants' new
    GPU work it can hold back (a spent budget)."""

    kind: str

    def spans(self, until: datetime, tenant: str | None = None) -> Spans:
        """Pods holding GPUs (running ones up to ``until``), with their uids; raises a
        `SchedulerError` when they cannot be read."""

    def stop_new_gpus(self, tenant: str) -> bool:
        """Refuse the tenant's new GPU work; False where the tenant is not."""

    def allow_new_gpus(self, tenant: str) -> None:
        """Take back what `stop_new_gpus` did, and nothing else."""


if TYPE_CHECKING:
    from scheduler.kubernetes.usage import KubernetesUsage

    def _kubernetes_is_sampled(k: KubernetesUsage) -> SampledUsage:
        return k  # the type checker holds the Kubernetes source to the protocol


def sampled(backends: Backends) -> list[tuple[SampledUsage, set[str]]]:
    """Each sampled usage source once, with its pools."""
    return [(s, pools) for s, pools in backends.usage_groups() if isinstance(s, SampledUsage)]


@dataclass
class Sampled:
    pods: int = 0  # pods that added time
    skipped: int = 0  # pods that could not be read
    errors: list[str] = field(default_factory=list)


def sample(
    store: Store, sources: Iterable[tuple[SampledUsage, set[str]]], now: datetime
) -> Sampled:
    """Count every source's pods up to ``now``; a source that cannot be read is reported
    and costs nothing (its pods are counted from their marks next time)."""
    out = Sampled()
    for source, pools in sources:
        try:
            read = source.spans(now)
        except SchedulerError as exc:
            out.errors.append(
                f"{source.kind} ({', '.join(sorted(pools))}): GPU usage not counted: "
                f"{safe(str(exc))}"
            )
            continue
        out.skipped += read.skipped
        out.pods += kept.record(store, [h for h in read.spans if h.pool in pools], now)
    return out


@dataclass(frozen=True, slots=True)
class Counted:
    """A tenant's GPU-microseconds per (UTC day, pool, GPU model), and what could not be
    read."""

    us: dict[tuple[date, str, str], int]
    notes: list[str]


@dataclass(frozen=True, slots=True)
class CountedAll:
    """GPU-microseconds per (tenant, UTC day, pool, GPU model), and what could not be read."""

    us: dict[tuple[str, date, str, str], int]
    notes: list[str]


def counted(
    store: Store,
    sources: Sequence[tuple[SampledUsage, set[str]]],
    tenant: str,
    since: datetime,
    until: datetime,
) -> Counted:
    """The tenant's GPU time in the sources' pools over [since, until): the days counted in
    the store, plus what its pods still present held since they were last counted."""
    got = counted_all(store, sources, tenant, since, until)
    return Counted({(d, p, m): us for (_, d, p, m), us in got.us.items()}, got.notes)


def counted_all(
    store: Store,
    sources: Sequence[tuple[SampledUsage, set[str]]],
    tenant: str | None,
    since: datetime,
    until: datetime,
) -> CountedAll:
    """`counted` of one tenant, or of every tenant (None) in one read of each source."""
    pools = set().union(*(p for _, p in sources)) if sources else set()
    us: dict[tuple[str, date, str, str], int] = {}
    for d in kept.days(store, tenant, since.date(), until.date()):
        if d.pool in pools and d.gpu_us > 0:
            key = (d.tenant, d.day, d.pool, d.gpu_model)
            us[key] = us.get(key, 0) + d.gpu_us
    notes = [NOTE]
    marks = kept.marks(store, tenant)
    horizon = until - kept.RETENTION
    for source, mine in sources:
        try:
            read = source.spans(until, tenant)
        except SchedulerError as exc:
            notes.append(
                f"{source.kind}: pods cannot be read now ({safe(str(exc))}); "
                "counted up to the last sweep"
            )
            continue
        if read.skipped:
            notes.append(f"{source.kind}: {read.skipped} pod(s) could not be read and are left out")
        for h in read.spans:
            if h.pool not in mine or (tenant is not None and h.tenant != tenant):
                continue
            mark = marks.get(h.uid)
            start = max(mark if mark is not None else max(h.start, horizon), since)
            for day, part in kept.split_days(start, min(h.end, until)):
                key = (h.tenant, day, h.pool, h.gpu_model)
                us[key] = us.get(key, 0) + h.gpus * part
    return CountedAll(us, notes)


def hours(us: int) -> float:
    return us / _US_PER_HOUR
