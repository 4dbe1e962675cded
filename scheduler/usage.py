"""GPU usage as a workload manager accounts it: who held how many GPUs of which model, when.

Each backend reads its own records (Slurm: sacct; Kubernetes: pods' GPU requests and
lifetimes; the simulation: its jobs) and hands back `UsageRecord`s; the control plane sums
them into GPU-hours per day (compute/services/usage.py). A record still running ends at the
``until`` it was asked for, so a report never counts time that has not passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

# A record whose GPU model the backend cannot tell (an untyped Slurm request, a pod on a
# node without the GPU product label).
UNKNOWN_MODEL = "unknown"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """``gpus`` GPUs of ``gpu_model`` held by ``tenant`` in ``pool`` over [start, end).

    Times are timezone-aware. ``start`` may lie before the window asked for: the consumer
    clips (a job that began last week still counts today only for today).
    """

    tenant: str
    pool: str
    gpu_model: str
    start: datetime
    end: datetime
    gpus: int

    def gpu_seconds(self, since: datetime, until: datetime) -> float:
        """GPU-seconds of this record inside [since, until)."""
        seconds = (min(self.end, until) - max(self.start, since)).total_seconds()
        return self.gpus * max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class UsageRead:
    """What one read gave: the records, and how many entries of the backend's answer were
    skipped as malformed (outside input: one bad line never hides the rest)."""

    records: list[UsageRecord]
    skipped: int = 0


@runtime_checkable
class UsageSource(Protocol):
    """A backend's GPU usage. ``kind`` names the backend ("slurm", "kubernetes", ...)."""

    kind: str

    def usage(self, since: datetime, until: datetime, tenant: str | None = None) -> UsageRead:
        """The records that overlap [since, until) (aware times), of ``tenant`` only when
        given. Raises a `scheduler.errors.SchedulerError` when the backend cannot be read."""
