"""Which pods ran on a node, from the pods the API server still holds: Kubernetes' side of
`scheduler.work.WorkHistory`.

A pod's owner is its namespace: ``tenant-<name>`` is tenant ``name``
(`scheduler.kubernetes.tenant_objects`); a pod elsewhere has no tenant (""). It holds its
effective GPU request from ``status.startTime`` until its containers have all terminated.
Kubernetes keeps no accounting, so a pod deleted is gone with its lifetime. Pods are
outside input (a tenant writes them): one that cannot be read is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from scheduler.kubernetes.tenant_objects import NAMESPACE_PREFIX
from scheduler.kubernetes.usage import Malformed, effective_gpus, lifetime
from scheduler.work import ENDED, FAILED, RUNNING, NodeWork, WorkRead

_ENDED_PHASES = {"Succeeded": ENDED, "Failed": FAILED}


def tenant_of(namespace: str) -> str:
    """``tenant-<name>`` → ``name``; any other namespace → ""."""
    if namespace.startswith(NAMESPACE_PREFIX) and len(namespace) > len(NAMESPACE_PREFIX):
        return namespace[len(NAMESPACE_PREFIX) :]
    return ""


def pod_work(pod: Mapping[str, Any], resource: str, until: datetime) -> NodeWork | None:
    """One pod → its `NodeWork`; None for a pod not bound, not started or without GPUs.
    Raises Malformed."""
    if not isinstance(pod, Mapping):
        raise Malformed("a pod that is not an object")
    metadata, spec, status = pod.get("metadata"), pod.get("spec"), pod.get("status") or {}
    if not (
        isinstance(metadata, Mapping) and isinstance(spec, Mapping) and isinstance(status, Mapping)
    ):
        raise Malformed("metadata, spec or status is not an object")
    node, name, namespace = spec.get("nodeName"), metadata.get("name"), metadata.get("namespace")
    if node is None:
        return None
    if not all(isinstance(x, str) and x for x in (node, name, namespace)):
        raise Malformed("nodeName, name or namespace is not a name")
    gpus = effective_gpus(pod, resource)
    span = lifetime(pod, until)
    if span is None or gpus == 0:
        return None
    phase = str(status.get("phase") or "")
    state = _ENDED_PHASES.get(phase, RUNNING)
    end = None if state == RUNNING else span[1]
    return NodeWork(
        f"{namespace}/{name}", tenant_of(str(namespace)), str(node), gpus, span[0], end, state
    )


def pods_work(
    pods: Iterable[Any],
    resource: str,
    since: datetime,
    until: datetime,
    *,
    node: str | None = None,
    failed_only: bool = False,
) -> WorkRead:
    """The pods that held GPUs at some time in [since, until] (of ``node`` only when given;
    with ``failed_only``, the Failed pods that ended in the window)."""
    out: list[NodeWork] = []
    skipped = 0
    for pod in pods:
        try:
            w = pod_work(pod, resource, until)
        except Malformed:
            skipped += 1
            continue
        if w is None or (node is not None and w.node != node) or w.start > until:
            continue
        if w.end is not None and w.end < since:
            continue
        if failed_only and (w.state != FAILED or w.end is None):
            continue
        out.append(w)
    return WorkRead(out, skipped)


def evicted_work(pods: Iterable[Any], resource: str, at: datetime) -> list[NodeWork]:
    """Pods a drain evicted or deleted ``at``, as they were: ended then (a pod that cannot
    be read is left out)."""
    out = []
    for pod in pods:
        try:
            w = pod_work(pod, resource, at)
        except Malformed:
            continue
        if w is not None:
            out.append(replace(w, end=max(at, w.start), state=ENDED))
    return out
