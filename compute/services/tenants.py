"""Tenants across backends: one spec, one plan; apply, suspend, resume, delete — audited.

A backend's apply is idempotent, so a failure part-way (a controller down) is
repaired by running apply again; the store records the tenant as applied only
once every backend took it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from compute.backends import Backends
from compute.clock import Clock
from compute.domain import AuditEntry
from compute.errors import (
    BackendError,
    ComputeError,
    InvalidInput,
    NotFoundError,
    PartialError,
    RefusedError,
)
from compute.store import Store, TenantRecord, identities
from compute.tenants.spec import spec_from_json, spec_to_json
from scheduler.errors import Conflict, SchedulerError
from scheduler.protocol import JobInfo
from scheduler.tenants import Change, Interrupted, TenantBackend, TenantBusy, TenantSpec

ACTIVE = "active"
SUSPENDED = "suspended"
# Applied in part (an apply that stopped after changing something); the next apply converges.
PARTIAL = "partial"
# TokenRequest's floor: the API server refuses bound tokens shorter than 10 minutes.
_MIN_TOKEN_SECONDS = 600
MAX_KUBECONFIG_HOURS = 24


@runtime_checkable
class KubeconfigIssuer(Protocol):
    def kubeconfig(self, name: str, *, expiration_seconds: int = 3600) -> str: ...


@dataclass
class TenantPlan:
    tenant: str
    changes: list[tuple[str, Change]] = field(default_factory=list)  # (backend, change)

    @property
    def empty(self) -> bool:
        return not self.changes

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "changes": [
                {
                    "backend": b,
                    "kind": c.kind.value,
                    "target": c.target,
                    "before": c.before,
                    "after": c.after,
                }
                for b, c in self.changes
            ],
        }


class TenantService:
    def __init__(self, store: Store, backends: Backends, clock: Clock) -> None:
        self.store = store
        self.backends = backends
        self.clock = clock

    # -- planning ------------------------------------------------------------------------

    def parts(
        self,
        spec: TenantSpec,
        managed: Callable[[TenantBackend], Collection[str]] = lambda b: b.managed(),
    ) -> list[tuple[TenantBackend, TenantSpec | None]]:
        """Each backend's part of the spec; None where the tenant must go from a backend
        (``managed``: the tenants a backend holds, asked only for a backend the spec
        leaves)."""
        out: list[tuple[TenantBackend, TenantSpec | None]] = []
        wanted = {q.pool for q in spec.quotas}
        missing = wanted - set(self.backends.tenants_by_pool)
        if missing:
            raise RefusedError(
                f"pool(s) {', '.join(sorted(missing))} cannot host tenants: no "
                "tenant backend configured for them"
            )
        for backend, pools in self.backends.tenant_groups():
            part = spec.for_pools(pools)
            if part.quotas:
                out.append((backend, part))
            elif spec.name in managed(backend):
                out.append((backend, None))
        return out

    def _with_state(self, spec: TenantSpec) -> TenantSpec:
        return with_state(spec, self.store.tenant(spec.name))

    def plan(self, spec: TenantSpec) -> TenantPlan:
        spec = self._with_state(spec)
        plan = TenantPlan(spec.name)
        try:
            for backend, part in self.parts(spec):
                changes = backend.plan(part) if part else backend.plan_delete(spec.name)
                plan.changes += [(backend.kind, c) for c in changes]
        except Conflict as exc:
            raise RefusedError(f"tenant {spec.name}: {exc}") from None
        except SchedulerError as exc:
            raise BackendError(f"tenant {spec.name}: cannot read live state: {exc}") from exc
        return plan

    # -- changing ------------------------------------------------------------------------

    def apply(self, spec: TenantSpec, actor: str, action: str = "tenant.apply") -> TenantPlan:
        spec = self._with_state(spec) if action == "tenant.apply" else spec
        done = TenantPlan(spec.name)
        try:
            for backend, part in self.parts(spec):
                with _recording(backend.kind, done):
                    if part is None:
                        changes = backend.delete(spec.name, force=False)
                    else:
                        changes = backend.apply(part)
                done.changes += [(backend.kind, c) for c in changes]
        except (TenantBusy, SchedulerError) as exc:
            raise self.failed(spec, actor, action, done, exc) from None
        with self.store.transaction() as tx:
            self.record(tx, spec, actor, action, done)
        return done

    def record(self, tx: Any, spec: TenantSpec, actor: str, action: str, done: TenantPlan) -> None:
        """A tenant every backend took: stored as applied, with its audit entry."""
        state = SUSPENDED if spec.suspended else ACTIVE
        tx.put_tenant(spec.name, spec_to_json(spec), state, self.clock.now())
        tx.add_audit(self._entry(actor, action, spec.name, done))

    def failed(
        self, spec: TenantSpec, actor: str, action: str, done: TenantPlan, exc: Exception
    ) -> ComputeError:
        """A backend stopped the apply of ``spec`` after ``done``: what changed is recorded
        (the tenant as partial, the audit); the error to tell."""
        if isinstance(exc, TenantBusy):
            self._audit(actor, f"{action}.partial", spec.name, done, error=str(exc))
            self._mark_partial(spec, done)
            return RefusedError(
                f"tenant {spec.name}: {exc} in a pool it is leaving; end them or "
                "delete the tenant with --force"
            )
        if isinstance(exc, Conflict):
            # Objects of that name that computectl did not make: never taken over.
            self._audit(actor, f"{action}.refused", spec.name, done, error=str(exc))
            self._mark_partial(spec, done)
            return RefusedError(f"tenant {spec.name}: {exc}")
        self._mark_partial(spec, done)
        return self._stopped(actor, f"{action}.partial", spec.name, done, exc)

    def suspend(self, name: str, actor: str) -> TenantPlan:
        return self.apply(replace(self._spec(name), suspended=True), actor, "tenant.suspend")

    def resume(self, name: str, actor: str) -> TenantPlan:
        return self.apply(replace(self._spec(name), suspended=False), actor, "tenant.resume")

    def jobs(self, name: str) -> list[JobInfo]:
        out: list[JobInfo] = []
        for backend, _pools in self.backends.tenant_groups():
            try:
                out += backend.jobs(name)
            except SchedulerError as exc:
                raise BackendError(f"tenant {name}: cannot list its jobs: {exc}") from exc
        return out

    def delete(
        self,
        name: str,
        actor: str,
        force: bool = False,
        grace_seconds: int = 30,
        purge_data: bool = False,
    ) -> TenantPlan:
        # Whatever a backend still holds of ours can be deleted, record or not: a tenant
        # deleted without purge may have left data (a namespace with volumes), and an apply
        # cut short may have left objects of a tenant never recorded as applied.
        if self.store.tenant(name) is None and not any(
            name in b.managed() for b, _ in self.backends.tenant_groups()
        ):
            self._spec(name)
        jobs = self.jobs(name)
        if jobs and not force:
            running = sum(1 for j in jobs if j.state == "running")
            raise RefusedError(
                f"tenant {name} has {running} running and {len(jobs) - running} "
                "pending job(s); delete --force cancels them"
            )
        done = TenantPlan(name)
        if jobs:
            self._audit(
                actor,
                "tenant.cancel_jobs",
                name,
                done,
                jobs=[j.id for j in jobs],
                grace_seconds=grace_seconds,
            )
        try:
            for backend, _pools in self.backends.tenant_groups():
                if name in backend.managed():
                    with _recording(backend.kind, done):
                        changes = backend.delete(
                            name, force=force, grace_seconds=grace_seconds, purge_data=purge_data
                        )
                    done.changes += [(backend.kind, c) for c in changes]
        except (SchedulerError, TenantBusy) as exc:
            raise self._stopped(actor, "tenant.delete.partial", name, done, exc) from None
        with self.store.transaction() as tx:
            tx.delete_tenant(name)
            # Wall time, as every token's lifetime.
            revoked = identities.revoke_tenant_credentials(tx, name, datetime.now(UTC))
            tx.add_audit(
                self._entry(
                    actor,
                    "tenant.delete",
                    name,
                    done,
                    force=force,
                    purge_data=purge_data,
                    tokens_revoked=revoked,
                )
            )
        return done

    def kubeconfig(self, name: str, hours: float = 1.0) -> str:
        """A kubeconfig for the tenant (a bound token expiring after ``hours``, at least
        10 minutes, at most a day) from the Kubernetes backend of its pools."""
        if not 0 < hours <= MAX_KUBECONFIG_HOURS:
            # Kubernetes issues it: revoking the person's computectl access cannot end it.
            raise InvalidInput(f"a kubeconfig lives at most {MAX_KUBECONFIG_HOURS} hours")
        pools = {q.pool for q in self._spec(name).quotas}
        for backend, served in self.backends.tenant_groups():
            if served & pools and isinstance(backend, KubeconfigIssuer):
                seconds = max(_MIN_TOKEN_SECONDS, round(hours * 3600))
                try:
                    return backend.kubeconfig(name, expiration_seconds=seconds)
                except Conflict as exc:
                    raise RefusedError(f"tenant {name}: {exc}") from None
                except SchedulerError as exc:
                    raise BackendError(f"tenant {name}: cannot issue a kubeconfig: {exc}") from exc
        raise RefusedError(f"tenant {name} has no Kubernetes pool: no kubeconfig to issue")

    # -- helpers -------------------------------------------------------------------------

    def _spec(self, name: str) -> TenantSpec:
        record = self.store.tenant(name)
        if record is None:
            raise NotFoundError(f"unknown tenant {name!r}")
        return spec_from_json(record.spec)

    def _entry(
        self, actor: str, action: str, name: str, plan: TenantPlan, **extra: Any
    ) -> AuditEntry:
        return AuditEntry(
            at=self.clock.now(),
            actor=actor,
            action=action,
            target=name,
            detail={"changes": plan.as_dict()["changes"], **extra},
        )

    def _mark_partial(self, spec: TenantSpec, done: TenantPlan) -> None:
        """An apply that changed something and then stopped leaves a tenant that is partly
        live: it is recorded as such, so `tenants list` shows it and delete finds it."""
        if not done.changes:
            return
        with self.store.transaction() as tx:
            tx.put_tenant(spec.name, spec_to_json(spec), PARTIAL, self.clock.now())

    def _stopped(
        self, actor: str, action: str, name: str, done: TenantPlan, exc: Exception
    ) -> BackendError | PartialError:
        """Record what a stopped apply or delete did change; the error to raise for it."""
        if not done.changes:
            return BackendError(f"tenant {name}: nothing changed: {exc}")
        self._audit(actor, action, name, done, error=str(exc))
        return PartialError(
            f"tenant {name}: stopped after {len(done.changes)} change(s) (listed in the "
            f"audit log as {action}): {exc}; run it again to converge"
        )

    def _audit(self, actor: str, action: str, name: str, plan: TenantPlan, **extra: Any) -> None:
        with self.store.transaction() as tx:
            tx.add_audit(self._entry(actor, action, name, plan, **extra))


def with_state(spec: TenantSpec, record: TenantRecord | None) -> TenantSpec:
    """``spec`` as `apply` makes it: `apply` never lifts a suspension, only `resume` does
    (a partial record keeps the suspension in its spec: applying again never lifts it)."""
    suspended = record is not None and (
        record.state == SUSPENDED or bool(record.spec.get("suspended"))
    )
    return replace(spec, suspended=suspended)


@contextmanager
def _recording(kind: str, done: TenantPlan) -> Iterator[None]:
    """What a backend changed before it stopped joins ``done``; its cause goes on up."""
    try:
        yield
    except Interrupted as exc:
        done.changes += [(kind, c) for c in exc.done]
        raise exc.cause from None
