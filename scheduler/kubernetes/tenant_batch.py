"""Many tenants at once: one read of the cluster, then each tenant's steps.

Planning a tenant alone reads each of its objects (a dozen requests); a thousand tenants
would be twelve thousand reads before anything is known. Here the cluster is read once
(one paged list per kind, and one list of ServiceAccount token Secrets), every tenant's
steps are computed from that snapshot with the same rules as one tenant's
(`scheduler.kubernetes.tenants`), the shared cluster-wide objects (the admission guards,
the ResourceFlavors) are written once, and the tenants' own steps run in order per
tenant, several tenants at a time: the API server answers requests in parallel.

Decoding and comparing a thousand tenants' objects (~9,000, ~12 MB of JSON) makes
millions of small dicts; the cycle collector, run over them again and again, took three
quarters of the decoding's CPU. None of them is in a cycle, so the collector is paused
while the snapshot is read and compared (process-wide, restored after; not while writing).

A snapshot is as old as its lists: another writer's change made between the list and a
tenant's write is found by the next plan, as it would be between one tenant's reads and
its writes. Replaces are conditional on the resourceVersion listed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from scheduler.errors import SchedulerError
from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.objects import meta
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
    ServiceAccount token Secrets; what each tenant wants (built once for the read and the
    diff), and the shared objects' steps once found (`tenant_diff.apply_steps`)."""

    objects: dict[_Key, dict[str, Any]]
    token_secrets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    wanted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    memo: td.Memo = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One tenant's result: its changes (planned, or made), or the error that stopped it
    (``changes`` then holds what was made before it)."""

    name: str
    changes: list[Change]
    error: SchedulerError | None = None


@runtime_checkable
class CachedLists(Protocol):
    """A driver that can list from the API server's watch cache (`KubeClient`)."""

    def list_cached(
        self, kind: str, namespace: str = "", label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]: ...


def read(client: Any, want: Iterable[dict[str, Any]]) -> Snapshot:
    """One list per kind of ``want`` (from the watch cache where the driver can): the
    live objects with their names."""
    lister = client.list_cached if isinstance(client, CachedLists) else client.list_objects
    keys: set[_Key] = set()
    versions: dict[str, str] = {}
    for obj in want:
        keys.add(td.key(obj))
        versions[str(obj["kind"])] = str(obj["apiVersion"])
    kinds = sorted(versions)
    # The lists at once: the API server answers them in parallel.
    with ThreadPoolExecutor(max_workers=len(kinds) + 1) as pool:
        tokens = pool.submit(lister, "Secret", field_selector=f"type={to.TOKEN_SECRET_TYPE}")
        lists = list(pool.map(lister, kinds))
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


@contextmanager
def _collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _snapshot(tenants: KubernetesTenants, specs: Sequence[TenantSpec]) -> Snapshot:
    wanted: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        try:
            wanted[spec.name] = to.desired(
                spec, tenants.pool_values, tenants.gpu_resource, tenants.queues
            )
        except SchedulerError:
            continue  # that tenant's plan says why
    seen = read(tenants.client, (o for want in wanted.values() for o in want))
    seen.wanted.update(wanted)
    return seen


def _planned(
    tenants: KubernetesTenants, specs: Sequence[TenantSpec]
) -> list[tuple[str, list[td.Step] | SchedulerError]]:
    with _collector_paused():
        return _steps(tenants, specs, _snapshot(tenants, specs))


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
    return [
        Outcome(name, [], steps)
        if isinstance(steps, SchedulerError)
        else Outcome(name, [s.change for s in steps])
        for name, steps in _planned(tenants, specs)
    ]


def _shared(step: td.Step) -> bool:
    """A cluster-wide object of every tenant's (a guard, a flavor), not of one tenant."""
    return not step.namespace and (step.obj is None or td.shared(step.obj))


def apply_many(
    tenants: KubernetesTenants, specs: Sequence[TenantSpec], workers: int = WORKERS
) -> list[Outcome]:
    planned = _planned(tenants, specs)
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
