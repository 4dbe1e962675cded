"""Tenants as a workload manager sees them: the spec a backend makes real, and its plan.

One tenant spec covers every pool the tenant buys; the control plane hands each
backend the part for its own pools. A backend marks what it creates as its own
(a description prefix, a label) and never touches objects it did not create.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from scheduler.errors import SchedulerError
from scheduler.protocol import JobInfo


@dataclass(frozen=True, slots=True)
class GpuQuota:
    pool: str
    gpu_model: str
    gpus: int


@dataclass(frozen=True, slots=True)
class TenantSpec:
    name: str
    users: tuple[str, ...] = ()
    quotas: tuple[GpuQuota, ...] = ()
    gpu_hours_budget: float | None = None
    max_wall_time_minutes: int | None = None
    suspended: bool = False
    # The operator's own work: it may borrow GPUs customers bought and leave idle, and a
    # backend makes it the first preempted when a customer wants them back.
    internal: bool = False

    def for_pools(self, pools: set[str]) -> TenantSpec:
        return TenantSpec(
            self.name,
            self.users,
            tuple(q for q in self.quotas if q.pool in pools),
            self.gpu_hours_budget,
            self.max_wall_time_minutes,
            self.suspended,
            self.internal,
        )


class ChangeKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One object that differs between the spec and the live state."""

    kind: ChangeKind
    target: str  # e.g. "qos aurora-labs", "namespace tenant-aurora-labs"
    before: str = ""  # the live state, in one line ("" when absent)
    after: str = ""  # what apply makes it ("" when deleted)


class Interrupted(SchedulerError):
    """A backend stopped part-way through changing a tenant: ``done`` were made, then ``cause``.

    Backends raise it only when something was already changed, so the control plane can
    record exactly what is live now; a failure before the first change raises ``cause``.
    """

    def __init__(self, cause: SchedulerError, done: list[Change]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.done = list(done)


class TenantBusy(Exception):
    """The tenant still has work running or waiting; deleting needs force."""

    def __init__(self, tenant: str, jobs: list[JobInfo]) -> None:
        super().__init__(f"tenant {tenant} has {len(jobs)} running or pending job(s)")
        self.jobs = jobs


@dataclass(frozen=True, slots=True)
class TenantUsage:
    tenant: str
    pool: str
    gpus_allocated: int
    gpu_seconds: float = 0.0
    jobs: list[JobInfo] = field(default_factory=list)


class TenantBackend(Protocol):
    """Makes tenants real in one workload manager. Every method is idempotent."""

    kind: str

    def plan(self, spec: TenantSpec) -> list[Change]:
        """What ``apply`` would change; empty when live state matches the spec."""

    def apply(self, spec: TenantSpec) -> list[Change]:
        """Make the live state match ``spec``; returns what it changed."""

    def plan_delete(self, name: str) -> list[Change]: ...

    def delete(
        self, name: str, force: bool = False, grace_seconds: int = 30, purge_data: bool = False
    ) -> list[Change]:
        """Remove the tenant's objects. Raises TenantBusy when work remains unless ``force``,
        which ends that work first (after ``grace_seconds``). Stored data (volumes) stays
        unless ``purge_data``; backends that hold none ignore it."""

    def jobs(self, name: str) -> list[JobInfo]:
        """The tenant's running and pending work."""

    def managed(self) -> list[str]:
        """Names of the tenants whose objects this backend holds (ours only)."""


@dataclass
class Outcome:
    """One tenant's result in a batch: its changes (planned, or made), or the error that
    stopped it — a `SchedulerError`, or `TenantBusy` — with ``changes`` then holding
    exactly what was made before it (what `Interrupted` carries for one tenant)."""

    name: str
    changes: list[Change] = field(default_factory=list)
    error: Exception | None = None


class TenantOutcome(Protocol):
    """What the control plane reads of an outcome (`Outcome` or a backend's own)."""

    @property
    def name(self) -> str: ...

    @property
    def changes(self) -> list[Change]: ...

    @property
    def error(self) -> Exception | None: ...


@runtime_checkable
class BatchTenantBackend(Protocol):
    """A backend that reads its live state once for many tenants and writes their changes
    together; one outcome per spec, in order. A tenant refused or failed holds back no
    other, except those whose changes shared a write that failed."""

    def plan_many(self, specs: Sequence[TenantSpec]) -> Sequence[TenantOutcome]: ...

    def apply_many(self, specs: Sequence[TenantSpec]) -> Sequence[TenantOutcome]: ...
