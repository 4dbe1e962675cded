"""Many tenants at once: one read of the cluster, then each tenant's steps.

Planning a tenant alone reads each of its objects (a dozen requests); a thousand tenants
would be twelve thousand reads before anything is known. Here the cluster is read once
(one paged list per kind, and one list of ServiceAccount token Secrets), every tenant's
steps are computed from that snapshot with the same rules as one tenant's
(`scheduler.kubernetes.tenants`), the shared cluster-wide objects (the admission guards,
the ResourceFlavors) are written once, and the tenants' own steps run in order per
tenant, several tenants at a time: the API server answers requests in parallel.

A snapshot is as old as its lists: another writer's change made between the list and a
tenant's write is found by the next plan, as it would be between one tenant's reads and
its writes. Replaces are conditional on the resourceVersion listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scheduler.errors import SchedulerError
from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.objects import TENANT_LABEL, labels_of, meta
from scheduler.tenants import Change, Interrupted, TenantSpec

if TYPE_CHECKING:
    from scheduler.kubernetes.tenants import KubernetesTenants

# Tenants written at once: enough to keep a local API server busy, few enough that its
# default max-in-flight (400 mutating requests) and the client's pool are never the limit.
WORKERS = 8
_Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live objects with the names of the wanted ones, and each tenant namespace's
    ServiceAccount token Secrets."""

    objects: dict[_Key, dict[str, Any]]
    token_secrets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One tenant's result: its changes (planned, or made), or the error that stopped it
    (``changes`` then holds what was made before it)."""

    name: str
    changes: list[Change]
    error: SchedulerError | None = None


def read(client: Any, want: Iterable[dict[str, Any]]) -> Snapshot:
    """One list per kind of ``want``: the live objects with their names."""
    keys: set[_Key] = set()
    versions: dict[str, str] = {}
    for obj in want:
        keys.add(td.key(obj))
        versions[str(obj["kind"])] = str(obj["apiVersion"])
    kinds = sorted(versions)
    # The lists at once: the API server answers them in parallel.
    with ThreadPoolExecutor(max_workers=len(kinds) + 1) as pool:
        tokens = pool.submit(
            client.list_objects, "Secret", field_selector=f"type={to.TOKEN_SECRET_TYPE}"
        )
        lists = list(pool.map(client.list_objects, kinds))
        token_list = tokens.result()
    objects: dict[_Key, dict[str, Any]] = {}
    for kind, listed in zip(kinds, lists, strict=True):
        for obj in listed:
            # The items of a list carry neither; a diff compares them.
            obj["kind"], obj["apiVersion"] = kind, obj.get("apiVersion") or versions[kind]
            key = (kind, str(meta(obj).get("namespace", "")), str(meta(obj).get("name", "")))
            if key in keys:
                objects[key] = obj
    spaces = {ns for _, ns, _ in keys if ns}
    secrets: dict[str, list[dict[str, Any]]] = {}
    for s in token_list:
        ns = str(meta(s).get("namespace", ""))
        if ns in spaces:
            s.setdefault("type", to.TOKEN_SECRET_TYPE)
            secrets.setdefault(ns, []).append(s)
    return Snapshot(objects, secrets)


def _snapshot(tenants: KubernetesTenants, specs: Sequence[TenantSpec]) -> Snapshot:
    want: list[dict[str, Any]] = []
    for spec in specs:
        try:
            want += to.desired(spec, tenants.pool_values, tenants.gpu_resource, tenants.queues)
        except SchedulerError:
            continue  # that tenant's plan says why
    return read(tenants.client, want)


def _steps(
    tenants: KubernetesTenants, specs: Sequence[TenantSpec], seen: Snapshot
) -> list[tuple[str, list[td.Step] | SchedulerError]]:
    out: list[tuple[str, list[td.Step] | SchedulerError]] = []
    for spec in specs:
        try:
            out.append((spec.name, tenants._apply_steps(spec, seen)))
        except SchedulerError as exc:
            out.append((spec.name, exc))
    return out


def plan_many(tenants: KubernetesTenants, specs: Sequence[TenantSpec]) -> list[Outcome]:
    seen = _snapshot(tenants, specs)
    return [
        Outcome(name, [], steps)
        if isinstance(steps, SchedulerError)
        else Outcome(name, [s.change for s in steps])
        for name, steps in _steps(tenants, specs, seen)
    ]


def _shared(step: td.Step) -> bool:
    """A cluster-wide object of every tenant's (a guard, a flavor), not of one tenant."""
    return not step.namespace and (step.obj is None or TENANT_LABEL not in labels_of(step.obj))


def apply_many(
    tenants: KubernetesTenants, specs: Sequence[TenantSpec], workers: int = WORKERS
) -> list[Outcome]:
    planned = _steps(tenants, specs, _snapshot(tenants, specs))
    # The shared objects first, each once, in the order the first tenant needs them.
    shared: dict[_Key, td.Step] = {}
    for _, steps in planned:
        for s in steps if isinstance(steps, list) else []:
            if _shared(s):
                shared.setdefault((s.kind, s.namespace, s.name), s)
    made: dict[_Key, Change] = {}
    failed: dict[_Key, SchedulerError] = {}
    for key, step in shared.items():
        try:
            tenants._run([step])
            made[key] = step.change
        except SchedulerError as exc:
            failed[key] = exc
    work: list[tuple[str, list[Change], list[td.Step]]] = []
    outcomes: dict[str, Outcome] = {}
    for name, steps in planned:
        if isinstance(steps, SchedulerError):
            outcomes[name] = Outcome(name, [], steps)
            continue
        keys = [(s.kind, s.namespace, s.name) for s in steps if _shared(s)]
        broken = next((failed[k] for k in keys if k in failed), None)
        if broken is not None:
            # Never the tenant's own steps without the guards they rely on.
            outcomes[name] = Outcome(name, [], broken)
            continue
        # A shared change is reported once, by the first tenant that needed it.
        first = [made.pop(k) for k in keys if k in made]
        work.append((name, first, [s for s in steps if not _shared(s)]))

    def run(item: tuple[str, list[Change], list[td.Step]]) -> Outcome:
        name, first, steps = item
        try:
            return Outcome(name, first + tenants._run(steps))
        except Interrupted as exc:
            return Outcome(name, first + exc.done, exc.cause)
        except SchedulerError as exc:
            return Outcome(name, first, exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for outcome in pool.map(run, work):
            outcomes[outcome.name] = outcome
    return [outcomes[spec.name] for spec in specs]
