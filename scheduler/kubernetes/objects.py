"""Kubernetes objects (as the API server's JSON) → computectl's view, and the patches back.

Pure functions: no I/O, so every rule about cordons, taints and annotations
is in one place and reads the same for the backend and its tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from scheduler.protocol import DrainMode, NodeStatus

# What computectl puts on a node it drains; nothing else on a node is ever changed.
TAINT_KEY = "computectl.io/unhealthy"
REASON_ANNOTATION = "computectl.io/drain-reason"
# Set when the node was cordoned by someone else before computectl drained it:
# resume must then leave that cordon in place.
WAS_CORDONED_ANNOTATION = "computectl.io/was-cordoned"
TENANT_LABEL = "computectl.io/tenant"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Deliberately not starting with "computectl:": the control plane treats it as
# someone else's drain and never resumes or changes it.
EXTERNAL_CORDON = "cordoned outside computectl"
EXTERNAL_TAINT = f"tainted {TAINT_KEY} outside computectl"
OWNED_PREFIX = "computectl:"

# GPU feature discovery's product names → computectl's model names.
GPU_MODELS = {
    "NVIDIA-H100-80GB-HBM3": "H100-SXM",
    "NVIDIA-H200": "H200",
    "NVIDIA-A100-SXM4-80GB": "A100-SXM",
    "NVIDIA-B200": "B200",
    "NVIDIA-GB200": "GB200",
}

_TERMINATED = ("Succeeded", "Failed")
# A label value (taint values follow the same rule).
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def gpu_model(labels: Mapping[str, str]) -> str:
    product = labels.get(GPU_PRODUCT_LABEL, "")
    return GPU_MODELS.get(product, product)


def selector(labels: Mapping[str, str]) -> str:
    """A label selector string for equality on every label."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("annotations") or {})


def taints_of(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((node.get("spec") or {}).get("taints") or [])


def is_cordoned(node: Mapping[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def has_our_taint(node: Mapping[str, Any]) -> bool:
    return any(t.get("key") == TAINT_KEY for t in taints_of(node))


def owned_reason_of(node: Mapping[str, Any]) -> str:
    """computectl's drain reason on the node, "" if computectl has not drained it."""
    reason = annotations_of(node).get(REASON_ANNOTATION, "")
    return reason if reason.startswith(OWNED_PREFIX) else ""


def drained_by_us(node: Mapping[str, Any]) -> bool:
    return bool(owned_reason_of(node)) and (is_cordoned(node) or has_our_taint(node))


def drain_reason(node: Mapping[str, Any]) -> str:
    """The reason the node takes no new work, "" if it does."""
    if not (is_cordoned(node) or has_our_taint(node)):
        return ""
    owned = owned_reason_of(node)
    if owned:
        return owned
    return EXTERNAL_CORDON if is_cordoned(node) else EXTERNAL_TAINT


def ready(node: Mapping[str, Any]) -> str:
    """The Ready condition's words, as kubectl prints them."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return {"True": "Ready", "False": "NotReady"}.get(str(cond.get("status")), "Unknown")
    return "Unknown"


def quantity(value: Any) -> int:
    """A resource quantity (extended resources are whole numbers) as an int."""
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        # "1k" and friends: rare for extended resources, but valid quantities.
        from kubernetes import utils

        k8s_utils: Any = utils
        return int(k8s_utils.parse_quantity(value))


def pod_gpus(pod: Mapping[str, Any], resource: str) -> int:
    """GPUs the pod holds: its effective request (limits stand in for missing requests)."""

    def of(container: Mapping[str, Any]) -> int:
        res = container.get("resources") or {}
        value = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource))
        return quantity(value) if value is not None else 0

    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    # Sidecars (restartPolicy Always) run alongside the app containers; other init
    # containers run one at a time before them.
    running = sum(of(c) for c in spec.get("containers") or []) + sum(
        of(c) for c in inits if c.get("restartPolicy") == "Always"
    )
    first = max((of(c) for c in inits if c.get("restartPolicy") != "Always"), default=0)
    return max(running, first)


def is_active(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in _TERMINATED


def pod_id(pod: Mapping[str, Any]) -> str:
    m = meta(pod)
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def node_status(
    node: Mapping[str, Any], pool: str, resource: str, gpus_allocated: int, jobs: int
) -> NodeStatus:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    words = ready(node)
    reason = drain_reason(node)
    state = words + (",SchedulingDisabled" if is_cordoned(node) else "")
    if has_our_taint(node):
        state += f",Tainted({TAINT_KEY})"
    return NodeStatus(
        name=str(meta(node).get("name", "")),
        pool=pool,
        gpu_model=gpu_model(labels_of(node)),
        gpus_total=quantity(allocatable.get(resource, 0)),
        gpus_allocated=gpus_allocated,
        drain=bool(reason),
        reason=reason,
        jobs=jobs,
        responding=words == "Ready",
        state=state,
    )


def taint_value(reason: str) -> str:
    """The check (or kind) a reason names, e.g. "computectl: xid: …" → "xid"; else "drain"."""
    rest = reason[len(OWNED_PREFIX) :] if reason.startswith(OWNED_PREFIX) else ""
    kind = rest.split(":", 1)[0].strip()
    return kind if _LABEL_VALUE.match(kind) else "drain"


def drained_as(node: Mapping[str, Any], reason: str, mode: DrainMode) -> bool:
    """The node carries exactly what `drain_patch` would write: draining it again is a no-op
    (the sweep re-drains a draining node every time, and must not write it every time)."""
    ours = [t for t in taints_of(node) if t.get("key") == TAINT_KEY]
    effect = "NoExecute" if mode == "down" else "NoSchedule"
    return (
        drained_by_us(node)
        and is_cordoned(node)
        and annotations_of(node).get(REASON_ANNOTATION) == reason
        and len(ours) == 1
        and ours[0].get("value") == taint_value(reason)
        and ours[0].get("effect") == effect
    )


def drain_patch(node: Mapping[str, Any], reason: str, mode: DrainMode) -> dict[str, Any]:
    """Cordon, computectl's taint and annotations; guarded by the node's resourceVersion."""
    taints = [t for t in taints_of(node) if t.get("key") != TAINT_KEY]
    effect = "NoExecute" if mode == "down" else "NoSchedule"
    taints.append({"key": TAINT_KEY, "value": taint_value(reason), "effect": effect})
    annotations: dict[str, str | None] = {REASON_ANNOTATION: reason}
    if not drained_by_us(node):
        # A fresh drain by computectl: remember whether someone else had cordoned it.
        annotations[WAS_CORDONED_ANNOTATION] = "true" if is_cordoned(node) else None
    return {
        "metadata": {
            "resourceVersion": meta(node).get("resourceVersion"),
            "annotations": annotations,
        },
        "spec": {"unschedulable": True, "taints": taints},
    }


def resume_patch(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """Undo exactly what `drain_patch` did; None when computectl has not drained the node."""
    notes = annotations_of(node)
    if REASON_ANNOTATION not in notes:
        return None
    spec: dict[str, Any] = {"taints": [t for t in taints_of(node) if t.get("key") != TAINT_KEY]}
    if notes.get(WAS_CORDONED_ANNOTATION) != "true":
        spec["unschedulable"] = None  # the default, false
    return {
        "metadata": {
            "resourceVersion": meta(node).get("resourceVersion"),
            "annotations": {REASON_ANNOTATION: None, WAS_CORDONED_ANNOTATION: None},
        },
        "spec": spec,
    }
