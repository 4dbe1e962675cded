"""GPU-hour budgets of Kubernetes tenants: tracked from the GPU time the control plane
counts (compute/services/usage_samples.py), with an event at 80 % and at 100 %, and at 100 %
the tenant's new GPU pods held back in each of its clusters until the budget is raised or
its usage reset.

Slurm enforces the same budget itself (GrpTRESMins on the account, from sacct's usage); on
Kubernetes nothing does, so the control plane does it here, after each sweep's sample:

* the budget counts the tenant's GPU time in Kubernetes pools since its last reset
  (`compute.store.usage.Budget.since`; Slurm's own usage is Slurm's to count);
* crossing 80 % or 100 % records one event per threshold (``tenant_budget_80``,
  ``tenant_budget_100``), once, whichever replica gets there first (a write conditional on
  the threshold recorded before); `computectl_tenant_budget_used_ratio` says where each
  tenant stands, and the alert rules fire on it;
* at 100 % each cluster holding the tenant gets the stop (`SampledUsage.stop_new_gpus`:
  a ResourceQuota of 0 GPUs beside the tenant's own, so its running pods go on); below
  100 % again (a larger budget, a reset, the budget removed) the stop is taken back and a
  ``tenant_budget_lifted`` event recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from compute.domain import AUTOMATION, AuditEntry, Event
from compute.errors import NotFoundError
from compute.services.safe_text import safe
from compute.services.usage_samples import SampledUsage, hours, sample, sampled
from compute.store import Store
from compute.store import usage as kept
from compute.store.repository import Tx
from compute.tenants.spec import spec_from_json
from scheduler.errors import SchedulerError

if TYPE_CHECKING:
    from compute.runtime import Runtime

WARN = 80
SPENT = 100
BUDGET_80 = "tenant_budget_80"
BUDGET_100 = "tenant_budget_100"
BUDGET_LIFTED = "tenant_budget_lifted"
_US_PER_HOUR = 3_600_000_000


def level_of(used_us: int, budget_hours: float | None) -> int:
    """The highest threshold reached: 0, `WARN` or `SPENT` (no budget: 0)."""
    if budget_hours is None:
        return 0
    budget_us = budget_hours * _US_PER_HOUR
    if used_us >= budget_us:
        return SPENT
    return WARN if used_us * 100 >= WARN * budget_us else 0


@dataclass(frozen=True, slots=True)
class BudgetFigure:
    tenant: str
    budget_gpu_hours: float
    used_gpu_hours: float
    since: datetime
    stopped: bool

    @property
    def ratio(self) -> float:
        return self.used_gpu_hours / self.budget_gpu_hours


def figures(store: Store) -> list[BudgetFigure]:
    """Where each tenant with a budget and tracked GPU time stands (`computectl_tenant_
    budget_used_ratio`); from the store only, so every replica says the same."""
    rows = kept.budgets(store)
    out = []
    for rec in store.tenants():
        budget = rec.spec.get("gpu_hours_budget")
        row = rows.get(rec.name)
        if row is None or not isinstance(budget, int | float) or budget <= 0:
            continue
        out.append(BudgetFigure(rec.name, float(budget), hours(row.gpu_us), row.since, row.stopped))
    return out


@dataclass
class Enforced:
    events: list[Event] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    lifted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _event(kind: str, tenant: str, used_us: int, budget: float | None, now: datetime) -> Event:
    used = hours(used_us)
    if kind == BUDGET_LIFTED:
        reason = f"tenant {tenant}: below its GPU-hour budget again; new GPU pods allowed"
    else:
        share = used / budget * 100 if budget else 0.0
        reason = (
            f"tenant {tenant} has used {share:.0f}% of its GPU-hour budget on Kubernetes "
            f"({used:.3f} of {budget:g} GPU-hours)"
        )
        if kind == BUDGET_100:
            reason += "; its new GPU pods are refused until the budget is raised or reset"
    return Event(
        at=now,
        node="",
        kind=kind,
        reason=reason,
        actor=AUTOMATION,
        detail={"tenant": tenant, "used_gpu_hours": round(used, 6), "budget_gpu_hours": budget},
    )


def _crossed(before: int, after: int) -> list[str]:
    if after > before:
        return [k for t, k in ((WARN, BUDGET_80), (SPENT, BUDGET_100)) if before < t <= after]
    return [BUDGET_LIFTED] if before == SPENT else []


def enforce(
    store: Store, sources: Sequence[tuple[SampledUsage, set[str]]], now: datetime
) -> Enforced:
    """Record thresholds crossed, and stop or allow each tenant's new GPU pods to match."""
    out = Enforced()
    tenants = {r.name: spec_from_json(r.spec) for r in store.tenants()}
    pools_of = {n: {q.pool for q in spec.quotas} for n, spec in tenants.items()}
    known = kept.budgets(store)
    for name, spec in tenants.items():
        on_kubernetes = any(pools_of[name] & pools for _, pools in sources)
        if spec.gpu_hours_budget is not None and name not in known and on_kubernetes:
            kept.track(store, name, now)
    for name, row in kept.budgets(store).items():
        budget = tenants[name].gpu_hours_budget if name in tenants else None
        level = level_of(row.gpu_us, budget)
        if level != row.level:
            events = [_event(k, name, row.gpu_us, budget, now) for k in _crossed(row.level, level)]
            if not kept.move_level(store, name, row.level, level, now, events):
                continue  # another replica recorded it: it acts on it too
            out.events += events
        if level == SPENT and not row.stopped:
            mine = pools_of.get(name, set())
            _switch(store, name, [s for s, pools in sources if mine & pools], True, now, out)
        elif level < SPENT and row.stopped:
            _switch(store, name, [s for s, _ in sources], False, now, out)
    return out


def _switch(
    store: Store,
    tenant: str,
    sources: Sequence[SampledUsage],
    stop: bool,
    now: datetime,
    out: Enforced,
) -> None:
    """Stop (or allow) in every source, then record it with an audit entry; a source that
    fails leaves it unrecorded, so the next sweep tries all again (both are idempotent)."""
    try:
        for source in sources:
            if stop:
                source.stop_new_gpus(tenant)
            else:
                source.allow_new_gpus(tenant)
    except SchedulerError as exc:
        verb = "hold back" if stop else "allow again"
        out.errors.append(f"tenant {tenant}: cannot {verb} new GPU pods: {safe(str(exc))}")
        return
    action = "tenant.budget_stop" if stop else "tenant.budget_lift"

    def audit(tx: Tx) -> None:
        tx.add_audit(AuditEntry(now, AUTOMATION, action, tenant, {"tenant": tenant}))

    kept.set_stopped(store, tenant, stop, now, audit)
    (out.stopped if stop else out.lifted).append(tenant)


def reset(store: Store, tenant: str, actor: str, now: datetime) -> None:
    """Count the tenant's budget from ``now`` again (an operator's decision, audited); the
    next sweep takes back a stop."""

    def audit(tx: Tx) -> None:
        tx.add_audit(AuditEntry(now, actor, "tenant.budget_reset", tenant, {"tenant": tenant}))

    if not kept.reset(store, tenant, now, audit):
        raise NotFoundError(f"tenant {tenant} has no GPU time counted on Kubernetes")


def track(rt: Runtime) -> list[str]:
    """After a sweep, by the acting control plane: count the Kubernetes pods' GPU time, then
    the budgets. What could not be done, one line each (the next sweep tries again)."""
    sources = sampled(rt.backends)
    if not sources:
        return []
    now = rt.clock.now()
    counted = sample(rt.store, sources, now)
    done = enforce(rt.store, sources, now)
    return counted.errors + done.errors
