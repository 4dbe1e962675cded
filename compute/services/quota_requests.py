"""Quota requests: a tenant-admin asks for a pool's GPU quota; an operator approves (the
tenant's spec takes the number and is applied on the real backends through the tenant
service, audited) or declines (nothing changes).

An approval first claims the request (pending -> applying), so two operators cannot both
apply it and a decline cannot race an apply; the apply's outcome then makes it approved, or
failed with the reason (the tenant service already recorded any change it made before it
stopped, so nothing half-done is claimed as done).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from compute.auth.policy import Forbidden
from compute.auth.principal import TENANT_ROLES, Principal, Role
from compute.clock import Clock
from compute.config import PoolSettings
from compute.errors import ComputeError, InvalidInput, NotFoundError, RefusedError
from compute.services.tenants import TenantService
from compute.store import Store
from compute.store import quota_requests as store_qr
from compute.store.quota_requests import (
    APPLYING,
    APPROVED,
    DECLINED,
    FAILED,
    PENDING,
    STATES,
    Audit,
    QuotaRequestRecord,
)
from compute.tenants.spec import spec_from_json
from compute.validation import MAX_GPUS_PER_QUOTA
from compute.validation import reason as checked_reason
from scheduler.tenants import GpuQuota

# A tenant asks for one pool at a time; this caps what one tenant can leave waiting.
MAX_PENDING_PER_TENANT = 16
MAX_NOTE = 160


@dataclass
class QuotaRequests:
    store: Store
    tenants: TenantService
    pools: Sequence[PoolSettings]
    clock: Clock

    # -- asking ---------------------------------------------------------------------------

    def create(
        self, by: Principal, actor: str, tenant: str, pool: str, gpus: int, reason: str
    ) -> QuotaRequestRecord:
        if not (by.role is Role.OPERATOR or (by.role is Role.TENANT_ADMIN and by.tenant == tenant)):
            raise Forbidden(f"{by.role} may not ask for {tenant}'s quota")
        record = self.store.tenant(tenant)
        if record is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        settings = {p.name: p for p in self.pools}.get(pool)
        if settings is None:
            raise InvalidInput(f"unknown pool {pool!r}; pools: {', '.join(sorted(self._names))}")
        if pool not in self.tenants.backends.tenants_by_pool:
            raise InvalidInput(f"pool {pool} cannot host tenants")
        whole = isinstance(gpus, int) and not isinstance(gpus, bool)
        if not whole or not 0 <= gpus <= MAX_GPUS_PER_QUOTA:
            raise InvalidInput(f"gpus: a whole number 0..{MAX_GPUS_PER_QUOTA}")
        try:
            why = checked_reason(reason)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        current = _quota(spec_from_json(record.spec).quotas, pool)
        if current == gpus:
            raise InvalidInput(f"{tenant}'s quota in {pool} is already {gpus} GPUs")
        made = store_qr.add(
            self.store,
            tenant=tenant,
            pool=pool,
            gpu_model=settings.gpu_model,
            gpus=gpus,
            current=current,
            reason=why,
            by=actor,
            at=self.clock.now(),
            max_pending=MAX_PENDING_PER_TENANT,
        )
        if made is None:
            raise RefusedError(
                f"{tenant} already has a pending request for {pool} (or "
                f"{MAX_PENDING_PER_TENANT} pending in all); wait for an operator's decision"
            )
        return made

    # -- reading --------------------------------------------------------------------------

    def visible(
        self, by: Principal, tenant: str | None = None, state: str | None = None
    ) -> list[QuotaRequestRecord]:
        """Operators and viewers: all (of ``tenant`` if given); a tenant's people: theirs."""
        if state is not None and state not in STATES:
            raise InvalidInput(f"state: one of {', '.join(STATES)}")
        if by.role in TENANT_ROLES:
            if tenant not in (None, by.tenant):
                raise Forbidden(f"{by.role} of {by.tenant} may see only its own requests")
            tenant = by.tenant
        elif by.role not in (Role.OPERATOR, Role.VIEWER):
            raise Forbidden(f"{by.role} may not read quota requests")
        elif tenant is not None and self.store.tenant(tenant) is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        return store_qr.listed(self.store, tenant=tenant, states=[state] if state else None)

    def get(self, id_: int) -> QuotaRequestRecord:
        found = store_qr.get(self.store, id_)
        if found is None:
            raise NotFoundError(f"no quota request {id_}")
        return found

    # -- deciding -------------------------------------------------------------------------

    def decline(self, by: Principal, actor: str, id_: int, note: str = "") -> QuotaRequestRecord:
        _operator(by)
        note = _note(note)
        found = self.get(id_)
        at = self.clock.now()
        audit = Audit(
            at=at,
            actor=actor,
            action="quota_request.decline",
            target=f"quota-request/{id_}",
            result="ok",
            tenant=found.tenant,
            detail={"tenant": found.tenant, "pool": found.pool, "gpus": found.gpus, "note": note},
        )
        done = store_qr.transition(
            self.store, id_, expect=PENDING, to=DECLINED, by=actor, at=at, note=note, audit=audit
        )
        if done is None:
            raise RefusedError(f"quota request {id_} is {self.get(id_).state}, not pending")
        return done

    def approve(self, by: Principal, actor: str, id_: int, note: str = "") -> QuotaRequestRecord:
        """Apply the request and record the outcome. A failed apply marks the request
        failed and raises the apply's error (the caller's answer is that error)."""
        _operator(by)
        note = _note(note)
        found = self.get(id_)
        at = self.clock.now()
        claimed = store_qr.transition(
            self.store, id_, expect=PENDING, to=APPLYING, by=actor, at=at, note=note, audit=None
        )
        if claimed is None:
            raise RefusedError(f"quota request {id_} is {self.get(id_).state}, not pending")
        detail = {"tenant": found.tenant, "pool": found.pool, "gpus": found.gpus, "note": note}
        try:
            plan = self.tenants.apply(self._spec_with(found), actor)
        except Exception as exc:
            why = str(exc) if isinstance(exc, ComputeError) else "internal error"
            failed = f"failed: {why}"[:500]
            store_qr.transition(
                self.store,
                id_,
                expect=APPLYING,
                to=FAILED,
                by=actor,
                at=self.clock.now(),
                note=f"{note + '; ' if note else ''}{failed}"[:500],
                audit=Audit(
                    self.clock.now(),
                    actor,
                    "quota_request.approve",
                    f"quota-request/{id_}",
                    failed,
                    found.tenant,
                    detail,
                ),
            )
            raise
        done = store_qr.transition(
            self.store,
            id_,
            expect=APPLYING,
            to=APPROVED,
            by=actor,
            at=self.clock.now(),
            note=note,
            audit=Audit(
                self.clock.now(),
                actor,
                "quota_request.approve",
                f"quota-request/{id_}",
                "ok",
                found.tenant,
                {**detail, "changes": plan.as_dict()["changes"]},
            ),
        )
        assert done is not None  # only this call moves it out of applying
        return done

    def _spec_with(self, req: QuotaRequestRecord) -> Any:
        """The tenant's spec as recorded now, with the request's number for its pool."""
        record = self.store.tenant(req.tenant)
        if record is None:
            raise NotFoundError(f"tenant {req.tenant} was deleted")
        spec = spec_from_json(record.spec)
        quotas = [q for q in spec.quotas if q.pool != req.pool]
        quotas.append(GpuQuota(pool=req.pool, gpu_model=req.gpu_model, gpus=req.gpus))
        order = {p.name: i for i, p in enumerate(self.pools)}
        quotas.sort(key=lambda q: order.get(q.pool, len(order)))
        return replace(spec, quotas=tuple(quotas))

    @property
    def _names(self) -> list[str]:
        return [p.name for p in self.pools]


def _quota(quotas: Sequence[GpuQuota], pool: str) -> int | None:
    return next((q.gpus for q in quotas if q.pool == pool), None)


def _operator(by: Principal) -> None:
    if by.role is not Role.OPERATOR:
        raise Forbidden(f"{by.role} may not decide quota requests")


def _note(note: str) -> str:
    if not note:
        return ""
    try:
        return checked_reason(note)
    except ValueError as exc:
        raise InvalidInput(f"note: {exc}") from None


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def request_view(r: QuotaRequestRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "tenant": r.tenant,
        "pool": r.pool,
        "gpu_model": r.gpu_model,
        "gpus": r.gpus,
        "current": r.current,
        "reason": r.reason,
        "requested_by": r.requested_by,
        "requested_at": r.requested_at.isoformat(),
        "state": r.state,
        "decided_by": r.decided_by,
        "decided_at": _iso(r.decided_at),
        "note": r.note,
    }


__all__ = ["APPROVED", "DECLINED", "FAILED", "PENDING", "QuotaRequests", "request_view"]
