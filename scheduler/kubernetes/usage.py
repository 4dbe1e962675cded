"""GPU usage of a Kubernetes cluster's tenants from their pods (a `UsageSource`).

A pod in a tenant's namespace (computectl's label ``computectl.io/tenant`` on a namespace
computectl manages) holds its effective GPU request from ``status.startTime`` until its
containers have all terminated (the latest ``finishedAt``), or until ``until`` while it
runs. The pool and GPU model are its node's (the pools' node selectors and the GPU product
label); a pod whose node is gone keeps the pool its ``computectl.io/pool`` node selector
pins, with an unknown model.

Kubernetes keeps no accounting: a pod deleted is gone from the API with its lifetime, so
`usage` counts only pods still present. `spans` gives the same pods with their uid, for a
control plane that records what it saw (compute/services/usage_samples.py keeps each pod's
GPU time in its store, so a deleted pod's time stays counted), and `stop_new_gpus` /
`allow_new_gpus` hold a tenant's new GPU pods back once its GPU-hour budget is spent
(`scheduler.kubernetes.usage_budget`).
Pods are outside input (a tenant writes them): one that cannot be read is skipped and
counted, never stopping the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes import usage_budget
from scheduler.kubernetes.driver import KubeDriver
from scheduler.kubernetes.objects import TENANT_LABEL, gpu_model, labels_of, matches, meta, selector
from scheduler.usage import UNKNOWN_MODEL, UsageRead, UsageRecord

T = TypeVar("T")
_ENDED = frozenset({"Succeeded", "Failed"})
# More GPUs than one pod can hold: a larger request is garbled, not a workload.
_MAX_GPUS = 1_000_000
# Extended resources are whole numbers; their quantities are written as plain integers.
_COUNT = re.compile(r"[0-9]{1,7}")
# The API server's object uids are UUIDs; anything else is not what it serves.
_UID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}")


class Malformed(ValueError):
    """A pod that is not what the API server serves."""


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what} is {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{what} is {type(value).__name__}")
    return [_dict(v, what) for v in value]


def _count(value: Any) -> int:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _COUNT.fullmatch(text) or int(text) > _MAX_GPUS:
        raise Malformed(f"GPU quantity {str(value)[:40]!r}")
    return int(text)


def effective_gpus(pod: Mapping[str, Any], resource: str) -> int:
    """The pod's effective GPU request, as the scheduler reckons it: the larger of the
    containers' sum (with sidecar init containers, which run beside them) and the largest
    other init container; a container's limit stands in for a missing request."""

    def of(c: Mapping[str, Any]) -> int:
        res = _dict(c.get("resources"), "resources")
        requests = _dict(res.get("requests"), "requests")
        value = requests.get(resource, _dict(res.get("limits"), "limits").get(resource))
        return _count(value) if value is not None else 0

    spec = _dict(pod.get("spec"), "spec")
    inits = _list(spec.get("initContainers"), "initContainers")
    running = sum(of(c) for c in _list(spec.get("containers"), "containers"))
    running += sum(of(c) for c in inits if c.get("restartPolicy") == "Always")
    first = max((of(c) for c in inits if c.get("restartPolicy") != "Always"), default=0)
    return max(running, first)


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise Malformed(f"{what} is {type(value).__name__}")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{what} {value[:40]!r}") from None
    if t.tzinfo is None:
        raise Malformed(f"{what} {value[:40]!r} has no zone")
    return t


def _phase(status: Mapping[str, Any]) -> str:
    phase = status.get("phase")
    if phase is not None and not isinstance(phase, str):
        raise Malformed(f"phase is {type(phase).__name__}")
    return phase or ""


def lifetime(pod: Mapping[str, Any], until: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of the pod on its node; None when it has not started."""
    status = _dict(pod.get("status"), "status")
    if status.get("startTime") is None:
        return None
    start = _time(status["startTime"], "startTime")
    if _phase(status) not in _ENDED:
        return start, max(start, until)
    finished = [
        _time(term["finishedAt"], "finishedAt")
        for c in _list(status.get("containerStatuses"), "containerStatuses")
        if (term := _dict(_dict(c.get("state"), "state").get("terminated"), "terminated"))
        and term.get("finishedAt") is not None
    ]
    if not finished:
        raise Malformed("an ended pod with no container's finishedAt")
    end = max(finished)
    if end < start:
        raise Malformed("ends before it starts")
    return start, end


def pod_record(
    pod: Mapping[str, Any],
    tenant: str,
    nodes: Mapping[str, tuple[str, str]],
    pool_values: Mapping[str, str],
    resource: str,
    until: datetime,
) -> UsageRecord | None:
    """One pod's record: None for a pod without GPUs, not started, or in no pool.
    ``nodes``: node name → (pool, GPU model); ``pool_values``: pool label value → pool."""
    gpus = effective_gpus(pod, resource)
    span = lifetime(pod, until) if gpus else None
    if span is None:
        return None
    spec = _dict(pod.get("spec"), "spec")
    node = str(spec.get("nodeName") or "")
    pinned = str(_dict(spec.get("nodeSelector"), "nodeSelector").get(to.POOL_LABEL) or "")
    if node in nodes:
        pool, model = nodes[node]
    elif pinned in pool_values:
        pool, model = pool_values[pinned], UNKNOWN_MODEL
    else:
        return None
    return UsageRecord(tenant, pool, model or UNKNOWN_MODEL, span[0], span[1], gpus)


@dataclass(frozen=True, slots=True)
class PodSpan:
    """One pod's GPUs over [start, end): ``end`` is final when ``ended`` (its containers'
    last finishedAt), else the ``until`` it was read at. ``uid`` names the pod for ever: a
    pod made again under the same name is another pod."""

    uid: str
    tenant: str
    pool: str
    gpu_model: str
    gpus: int
    start: datetime
    end: datetime
    ended: bool


@dataclass(frozen=True, slots=True)
class SpanRead:
    spans: list[PodSpan]
    skipped: int = 0


def pod_span(
    pod: Mapping[str, Any],
    tenant: str,
    nodes: Mapping[str, tuple[str, str]],
    pool_values: Mapping[str, str],
    resource: str,
    until: datetime,
) -> PodSpan | None:
    """`pod_record` with the pod's uid and whether it has ended."""
    rec = pod_record(pod, tenant, nodes, pool_values, resource, until)
    if rec is None:
        return None
    uid = meta(pod).get("uid")
    if not isinstance(uid, str) or not _UID.fullmatch(uid):
        raise Malformed(f"uid {str(uid)[:40]!r}")
    ended = _phase(_dict(pod.get("status"), "status")) in _ENDED
    return PodSpan(uid, tenant, rec.pool, rec.gpu_model, rec.gpus, rec.start, rec.end, ended)


class KubernetesUsage:
    """GPU usage of one cluster's pools; ``pools`` maps pool → node label selector, as the
    cluster's `KubernetesWorkloadManager` does (sharing its client)."""

    kind = "kubernetes"

    def __init__(
        self,
        client: KubeDriver,
        pools: Mapping[str, Mapping[str, str]],
        gpu_resource: str = "nvidia.com/gpu",
    ) -> None:
        self.client = client
        self.pools = {p: dict(sel) for p, sel in pools.items()}
        self.gpu_resource = gpu_resource

    def usage(self, since: datetime, until: datetime, tenant: str | None = None) -> UsageRead:
        read, skipped = self._read(pod_record, until, tenant)
        return UsageRead([r for r in read if r.end > since and r.start < until], skipped)

    def spans(self, until: datetime, tenant: str | None = None) -> SpanRead:
        """Every tenant's pods holding GPUs that have started (of ``tenant`` only when
        given), running ones up to ``until``. Raises a `SchedulerError` when the API
        server cannot be read: never a part of the pods."""
        return SpanRead(*self._read(pod_span, until, tenant))

    def _read(
        self, make: Callable[..., T | None], until: datetime, only: str | None
    ) -> tuple[list[T], int]:
        """``make`` of each tenant pod (None: not counted), and how many were malformed."""
        tenants = self._tenants(only)
        if not tenants:
            return [], 0
        if only is not None:
            pods = self.client.list_pods(f"metadata.namespace={to.namespace_of(only)}")
        else:
            pods = self.client.list_pods()
        nodes = self._nodes()
        values = {v: p for p, v in to.pool_label_values(self.pools).items()}
        out: list[T] = []
        skipped = 0
        for pod in pods:
            owner = tenants.get(str(meta(pod).get("namespace", "")))
            if owner is None:
                continue
            try:
                made = make(pod, owner, nodes, values, self.gpu_resource, until)
            except Malformed:
                skipped += 1
                continue
            if made is not None:
                out.append(made)
        return out, skipped

    def stop_new_gpus(self, tenant: str) -> bool:
        """Hold back the tenant's new GPU pods here (its running pods go on); False when
        the tenant has no namespace of computectl's in this cluster."""
        return usage_budget.stop(self.client, tenant, self.gpu_resource)

    def allow_new_gpus(self, tenant: str) -> None:
        """Take back only what `stop_new_gpus` added."""
        usage_budget.allow(self.client, tenant)

    def _tenants(self, only: str | None) -> dict[str, str]:
        """namespace → tenant, of the namespaces computectl made for tenants."""
        wanted = f"{to.MANAGED_BY}={to.MANAGER},{TENANT_LABEL}"
        if only is not None:
            wanted = f"{to.MANAGED_BY}={to.MANAGER},{TENANT_LABEL}={only}"
        out = {}
        for ns in self.client.list_namespaces(wanted):
            name = labels_of(ns).get(TENANT_LABEL, "")
            if name and meta(ns).get("name") == to.namespace_of(name):
                out[to.namespace_of(name)] = name
        return out

    def _nodes(self) -> dict[str, tuple[str, str]]:
        """node name → (pool, GPU model); a node several pools select is the first's."""
        out: dict[str, tuple[str, str]] = {}
        for wanted in {selector(sel) for sel in self.pools.values()}:
            for raw in self.client.list_nodes(wanted):
                name, labels = meta(raw).get("name"), labels_of(raw)
                pool = next((p for p, sel in self.pools.items() if matches(labels, sel)), None)
                if isinstance(name, str) and name not in out and pool is not None:
                    out[name] = (pool, gpu_model(labels))
        return out
