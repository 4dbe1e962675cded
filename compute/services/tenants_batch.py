"""Many tenant specs at once: each backend reads its live state once and writes the
changes of all tenants together; each tenant is recorded, audited or refused on its own.

A backend that can (`scheduler.tenants.BatchTenantBackend`) gets every tenant's part in one
call; another is asked tenant by tenant, as for one spec. A tenant refused or failed in one
backend holds back no other tenant; its own part in the backends after that one is not
asked for (as one tenant's apply stops at its first failing backend).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from compute.errors import BackendError, ComputeError, InvalidInput, RefusedError
from compute.services.tenants import (
    ACTIVE,
    SUSPENDED,
    TenantPlan,
    TenantService,
    with_state,
)
from compute.store import TenantRecord
from compute.tenants.outcome import batch_error
from compute.tenants.spec import spec_from_json
from scheduler.errors import Conflict, SchedulerError
from scheduler.tenants import (
    BatchTenantBackend,
    Change,
    Interrupted,
    TenantBackend,
    TenantBusy,
    TenantSpec,
)

# Specs one call may hold: a directory of a site's tenants, bounded.
MAX_SPECS = 10_000


@dataclass
class TenantBatch:
    """What a plan or apply of many tenants did: each tenant's plan (done), and why each
    of the others was not planned or applied (for an apply: with what it did change
    recorded in the audit, as for one tenant)."""

    done: list[TenantPlan] = field(default_factory=list)
    refused: dict[str, ComputeError] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenants": [p.as_dict() for p in self.done],
            "refused": [
                {"tenant": t, "code": e.code, "detail": str(e)} for t, e in self.refused.items()
            ],
        }

    def error(self, verb: str) -> ComputeError | None:
        return batch_error(len(self.done), self.refused, verb)


def plan_many(service: TenantService, specs: Sequence[TenantSpec]) -> TenantBatch:
    """`TenantService.plan` of every spec, each backend read once."""
    specs, _records = _prepared(service, specs)
    plans = {s.name: TenantPlan(s.name) for s in specs}
    parts, failures = _split(service, specs)
    for backend, _pools in service.backends.tenant_groups():
        todo = [(n, p) for n, p in parts.get(id(backend), []) if n not in failures]
        for name, changes, exc in _run(backend, todo, apply=False):
            if exc is None:
                plans[name].changes += [(backend.kind, c) for c in changes]
            elif isinstance(exc, Conflict):
                failures[name] = RefusedError(f"tenant {name}: {exc}")
            else:
                failures[name] = BackendError(f"tenant {name}: cannot read live state: {exc}")
    refused = {n: e for n, e in failures.items() if isinstance(e, ComputeError)}
    return TenantBatch([p for n, p in plans.items() if n not in refused], refused)


def apply_many(service: TenantService, specs: Sequence[TenantSpec], actor: str) -> TenantBatch:
    """`TenantService.apply` of every spec: each backend reads once and writes together;
    the tenants every backend took are recorded in one store transaction."""
    specs, records = _prepared(service, specs)
    by_name = {s.name: s for s in specs}
    plans = {s.name: TenantPlan(s.name) for s in specs}
    parts, failures = _split(service, specs)
    for backend, _pools in service.backends.tenant_groups():
        todo = [(n, p) for n, p in parts.get(id(backend), []) if n not in failures]
        for name, changes, exc in _run(backend, todo, apply=True):
            plans[name].changes += [(backend.kind, c) for c in changes]
            if exc is not None:
                failures[name] = exc
    refused: dict[str, ComputeError] = {}
    for name, exc in failures.items():
        refused[name] = (
            exc
            if isinstance(exc, ComputeError)
            else service.failed(by_name[name], actor, "tenant.apply", plans[name], exc)
        )
    done = [p for n, p in plans.items() if n not in refused]
    # A tenant already recorded as it is, that no backend changed, is not written again:
    # a reconcile of a thousand unchanged tenants adds nothing to the audit log.
    changed = [
        p for p in done if p.changes or not _recorded(records.get(p.tenant), by_name[p.tenant])
    ]
    if changed:
        with service.store.transaction() as tx:
            for plan in changed:
                service.record(tx, by_name[plan.tenant], actor, "tenant.apply", plan)
    return TenantBatch(done, refused)


def _recorded(record: TenantRecord | None, spec: TenantSpec) -> bool:
    state = SUSPENDED if spec.suspended else ACTIVE
    return record is not None and record.state == state and spec_from_json(record.spec) == spec


# -- helpers ---------------------------------------------------------------------------------

_Parts = list[tuple[str, TenantSpec | None]]


def _prepared(
    service: TenantService, specs: Sequence[TenantSpec]
) -> tuple[list[TenantSpec], dict[str, TenantRecord]]:
    """The specs as `apply` makes them (suspensions kept), refused when they name no
    tenant, too many, or one tenant twice."""
    if not specs:
        raise InvalidInput("name at least one tenant spec")
    if len(specs) > MAX_SPECS:
        raise InvalidInput(f"at most {MAX_SPECS} tenant specs at once, not {len(specs)}")
    counts = Counter(s.name for s in specs)
    twice = sorted(n for n, c in counts.items() if c > 1)
    if twice:
        raise InvalidInput(f"tenant(s) named by two specs: {', '.join(twice)}")
    records = {r.name: r for r in service.store.tenants()}
    return [with_state(s, records.get(s.name)) for s in specs], records


def _split(
    service: TenantService, specs: Sequence[TenantSpec]
) -> tuple[dict[int, _Parts], dict[str, Exception]]:
    """Each backend's (by id) parts of the specs, None where a tenant leaves it; and the
    specs refused before any backend is asked (a pool no backend hosts). Each backend
    is asked once which tenants it holds, and only if a spec leaves it."""
    held: dict[int, frozenset[str]] = {}

    def managed(backend: TenantBackend) -> Collection[str]:
        if id(backend) not in held:
            held[id(backend)] = frozenset(backend.managed())
        return held[id(backend)]

    parts: dict[int, _Parts] = {}
    failures: dict[str, Exception] = {}
    for spec in specs:
        try:
            found = service.parts(spec, managed)
        except ComputeError as exc:
            failures[spec.name] = exc
            continue
        except SchedulerError as exc:
            failures[spec.name] = BackendError(f"tenant {spec.name}: {exc}")
            continue
        for backend, part in found:
            parts.setdefault(id(backend), []).append((spec.name, part))
    return parts, failures


def _run(
    backend: TenantBackend, parts: _Parts, apply: bool
) -> list[tuple[str, list[Change], Exception | None]]:
    """Each tenant's changes (made or planned) in ``backend`` and the error that stopped
    it, if one did (the changes are then those made before it)."""
    staying = [p for _n, p in parts if p is not None]
    out: list[tuple[str, list[Change], Exception | None]] = []
    if staying and isinstance(backend, BatchTenantBackend):
        found = backend.apply_many(staying) if apply else backend.plan_many(staying)
        out += [(o.name, list(o.changes), o.error) for o in found]
    else:
        for part in staying:
            out.append(_one(part.name, backend.apply if apply else backend.plan, part))
    for name in (n for n, p in parts if p is None):
        out.append(_one(name, _delete if apply else _plan_delete, (backend, name)))
    return out


def _delete(target: tuple[TenantBackend, str]) -> list[Change]:
    return target[0].delete(target[1], force=False)


def _plan_delete(target: tuple[TenantBackend, str]) -> list[Change]:
    return target[0].plan_delete(target[1])


def _one(
    name: str, fn: Callable[[Any], list[Change]], arg: Any
) -> tuple[str, list[Change], Exception | None]:
    try:
        return name, fn(arg), None
    except Interrupted as exc:
        return name, exc.done, exc.cause
    except (SchedulerError, TenantBusy) as exc:
        return name, [], exc
