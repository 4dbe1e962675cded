"""Tenants' drift, found without asking: every `drift_interval_seconds` the acting control
plane plans each tenant it recorded as applied (nothing is changed) and keeps what differs
from the spec, per tenant, backend and object (compute/store/drift.py).

* Each backend is read once a check: its tenants' parts planned together where it can
  (`plan_many`), else one by one; the same parts `computectl tenants plan` looks at (a
  tenant's pools in that backend; a tenant that left the backend's pools but is still
  held there plans its delete). Backend by backend, not through
  `compute.services.tenants_batch.plan_many`, which refuses a tenant whole when one of its
  backends fails: here a backend that fails leaves the others' findings standing.
* An object that starts drifting records one ``tenant_drift`` event, one that stops one
  ``tenant_drift_cleared``; `computectl_tenant_drift` is 1 for each drifting object.
* A backend that cannot be read is no evidence: nothing is recorded for it (its drift stays
  as last seen), the check's row says it failed, and the error goes to the sweep's report.
  A tenant that cannot be planned (objects of its name that computectl did not make) keeps
  its drift as last seen too.
* With ``[tenants] repair_drift = true`` a drifting tenant's spec is applied again (audited
  as automation, action ``tenant.drift_repair``) and a ``tenant_drift_repaired`` event
  lists what it restored; without it, nothing is changed.

Tenants recorded as partial (an apply that stopped) are not checked: what differs there is
the apply not yet done, which the operator was told about, not somebody's edit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from compute.backends import Backends
from compute.domain import AUTOMATION, Event
from compute.errors import ComputeError
from compute.services.safe_text import safe
from compute.services.tenants import ACTIVE, SUSPENDED
from compute.store import TenantRecord
from compute.store import drift as kept
from compute.store.drift import Drift
from compute.store.repository import Tx
from compute.tenants.spec import spec_from_json
from scheduler.errors import SchedulerError
from scheduler.tenants import BatchTenantBackend, Change, TenantBackend, TenantSpec

if TYPE_CHECKING:
    from compute.runtime import Runtime

DRIFT = "tenant_drift"
CLEARED = "tenant_drift_cleared"
REPAIRED = "tenant_drift_repaired"
REPAIR_ACTION = "tenant.drift_repair"
_T = TypeVar("_T")


@dataclass
class DriftReport:
    """What one call did: whether a check ran, what drifts now, what started and stopped
    drifting, which tenants were repaired, and what could not be done (one line each)."""

    checked: bool = False
    drifting: list[Drift] = field(default_factory=list)
    started: list[Drift] = field(default_factory=list)
    cleared: list[Drift] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def due(rt: Runtime, now: datetime) -> bool:
    """Whether a check is due: none tried by any replica within the interval (0: never)."""
    interval = rt.settings.tenants.drift_interval_seconds
    if interval <= 0:
        return False
    last = kept.last_tried(rt.store)
    # A clock that went back (a restored simulation) must not stop the checks for as long.
    return last is None or last > now or now - last >= timedelta(seconds=interval)


def check(rt: Runtime, now: datetime, *, force: bool = False) -> DriftReport:
    """After a sweep, by the acting control plane: plan every applied tenant when a check
    is due (``force``: now), record the drift, repair it where the settings say so."""
    if not rt.may_act() or not (force or due(rt, now)):
        return DriftReport()
    records = rt.store.tenants()
    known = {r.name for r in records}
    specs = {r.name: as_applied(r) for r in records if r.state in (ACTIVE, SUSPENDED)}
    report = DriftReport(checked=True)
    for backend, pools, label in labelled(rt.backends):
        found, checked, errors = _plan(backend, pools, label, specs)
        report.errors += errors
        if errors and not checked:
            # Not one tenant could be read: no evidence either way.
            kept.failed(rt.store, label, now, errors[0])
            continue
        done = kept.record(rt.store, label, found, checked, known, now, _announcer(now))
        report.drifting += found
        report.started += done.started
        report.cleared += done.cleared
    if rt.settings.tenants.repair_drift:
        _repair(rt, specs, report, now)
    return report


def as_applied(record: TenantRecord) -> TenantSpec:
    """The recorded spec as apply made it (a suspension is part of it)."""
    spec = spec_from_json(record.spec)
    suspended = record.state == SUSPENDED or bool(record.spec.get("suspended"))
    return replace(spec, suspended=suspended)


def labelled(backends: Backends) -> list[tuple[TenantBackend, set[str], str]]:
    """Each tenant backend, its pools and its name in the metric: its kind, or where two
    backends share a kind, the kind and its first pool."""
    groups = backends.tenant_groups()
    kinds = Counter(b.kind for b, _ in groups)
    out = []
    for backend, pools in groups:
        label = backend.kind if kinds[backend.kind] == 1 else f"{backend.kind}:{min(pools)}"
        out.append((backend, pools, label[: kept.BACKEND_CHARS]))
    return out


_Result = tuple[str, list[Change], Exception | None]


def _plan(
    backend: TenantBackend, pools: set[str], label: str, specs: dict[str, TenantSpec]
) -> tuple[list[Drift], set[str], list[str]]:
    """The drift found in one backend, the tenants it could plan, and the errors."""
    try:
        held = set(backend.managed())
        parts = [p for p in (s.for_pools(pools) for s in specs.values()) if p.quotas]
        leaving = [n for n, s in specs.items() if not s.for_pools(pools).quotas and n in held]
        results: list[_Result]
        if parts and isinstance(backend, BatchTenantBackend):
            results = [(o.name, list(o.changes), o.error) for o in backend.plan_many(parts)]
        else:
            results = [_one(p.name, backend.plan, p) for p in parts]
        results += [_one(n, backend.plan_delete, n) for n in leaving]
    except SchedulerError as exc:
        return [], set(), [f"tenant drift: cannot read {label}: {safe(str(exc))}"]
    found: list[Drift] = []
    checked: set[str] = set()
    errors: list[str] = []
    for name, changes, err in results:
        if err is not None:
            errors.append(f"tenant drift: cannot plan tenant {name} in {label}: {safe(str(err))}")
            continue
        checked.add(name)
        found += [_drift(name, label, c) for c in changes]
    return found, checked, errors


def _one(name: str, fn: Callable[[_T], list[Change]], arg: _T) -> _Result:
    try:
        return name, fn(arg), None
    except SchedulerError as exc:
        return name, [], exc


def _drift(tenant: str, backend: str, c: Change) -> Drift:
    return Drift(
        tenant,
        backend,
        safe(c.target)[: kept.OBJECT_CHARS],
        c.kind.value,
        safe(c.before),
        safe(c.after),
    )


def _announcer(now: datetime) -> kept.Announce:
    def announce(d: Drift, started: bool) -> Event:
        if started:
            reason = (
                f"tenant {d.tenant}: {d.object} in {d.backend} differs from its spec "
                f"(live: {d.live or 'absent'}; spec: {d.spec or 'absent'})"
            )
        else:
            reason = f"tenant {d.tenant}: {d.object} in {d.backend} matches its spec again"
        return Event(
            at=now,
            node="",
            kind=DRIFT if started else CLEARED,
            reason=reason,
            actor=AUTOMATION,
            detail={
                "tenant": d.tenant,
                "backend": d.backend,
                "object": d.object,
                "change": d.change,
                "live": d.live,
                "spec": d.spec,
            },
        )

    return announce


def _repair(rt: Runtime, specs: dict[str, TenantSpec], report: DriftReport, now: datetime) -> None:
    """Apply again the spec of each tenant found drifting; its drift goes with the event."""
    for name in sorted({d.tenant for d in report.drifting}):
        try:
            done = rt.tenants.apply(specs[name], AUTOMATION, REPAIR_ACTION)
        except ComputeError as exc:
            report.errors.append(f"tenant drift: cannot repair tenant {name}: {safe(str(exc))}")
            continue
        kept.forget(rt.store, name, _repaired(name, done.as_dict()["changes"], now))
        report.repaired.append(name)


def _repaired(
    name: str, changes: list[dict[str, str]], now: datetime
) -> Callable[[Tx, list[Drift]], None]:
    def record(tx: Tx, gone: list[Drift]) -> None:
        objects = sorted(f"{d.backend} {d.object}" for d in gone)
        tx.add_event(
            Event(
                at=now,
                node="",
                kind=REPAIRED,
                reason=f"tenant {name}: its spec applied again by automation; "
                f"{len(changes)} change(s) restored {', '.join(objects) or 'nothing'}",
                actor=AUTOMATION,
                detail={"tenant": name, "objects": objects, "changes": changes},
            )
        )

    return record
