"""The Kubernetes backend's pure parts: node status, GPU requests, the drain/resume patches."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.kubernetes import objects as o


def node(
    *,
    cordoned: bool = False,
    taints: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    ready: str = "True",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "kwok-gpu-001",
            "resourceVersion": "42",
            "labels": {
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "computectl.io/pool": "training",
            },
            "annotations": annotations or {},
        },
        "spec": {"unschedulable": cordoned, "taints": taints or []},
        "status": {
            "allocatable": {"nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def test_a_healthy_node() -> None:
    s = o.node_status(node(), "training", "nvidia.com/gpu", 4, 1)
    assert (s.gpu_model, s.gpus_total, s.gpus_allocated, s.drain, s.reason) == (
        "H100-SXM",
        8,
        4,
        False,
        "",
    )
    assert s.responding and s.state == "Ready"


def test_someone_elses_cordon_is_not_ours() -> None:
    s = o.node_status(node(cordoned=True), "training", "nvidia.com/gpu", 0, 0)
    assert s.drain and s.reason == o.EXTERNAL_CORDON and not s.reason.startswith("computectl:")


def test_our_drain_reads_back_with_its_reason() -> None:
    reason = "computectl: xid: XID 79 on GPU 3"
    patch = o.drain_patch(node(), reason, "drain")
    assert patch["spec"]["unschedulable"] is True
    assert patch["spec"]["taints"] == [{"key": o.TAINT_KEY, "value": "xid", "effect": "NoSchedule"}]
    assert patch["metadata"]["resourceVersion"] == "42"
    drained = node(
        cordoned=True, taints=patch["spec"]["taints"], annotations={o.REASON_ANNOTATION: reason}
    )
    s = o.node_status(drained, "training", "nvidia.com/gpu", 0, 0)
    assert s.drain and s.reason == reason
    assert o.drain_patch(node(), reason, "down")["spec"]["taints"][0]["effect"] == "NoExecute"


def test_resume_undoes_only_what_computectl_did() -> None:
    theirs = {"key": "maintenance", "value": "psu", "effect": "NoSchedule"}
    patch = o.drain_patch(node(cordoned=True, taints=[theirs]), "computectl: x: y", "drain")
    assert patch["metadata"]["annotations"][o.WAS_CORDONED_ANNOTATION] == "true"
    drained = node(
        cordoned=True,
        taints=patch["spec"]["taints"],
        annotations={o.REASON_ANNOTATION: "computectl: x: y", o.WAS_CORDONED_ANNOTATION: "true"},
    )
    back = o.resume_patch(drained)
    assert back is not None
    assert back["spec"]["taints"] == [theirs]  # their taint stays
    assert "unschedulable" not in back["spec"]  # and so does their cordon
    assert o.resume_patch(node(cordoned=True)) is None  # not ours: nothing to undo


@pytest.mark.parametrize(
    ("reason", "value"),
    [
        ("computectl: gpu_count: 1 of 8", "gpu_count"),
        ("computectl: operator: swap NIC", "operator"),
        ("computectl: burn-in: periodic", "burn-in"),
        ("admin: psu", "drain"),
        ("computectl: two words: x", "drain"),
    ],
)
def test_taint_value_names_the_check(reason: str, value: str) -> None:
    assert o.taint_value(reason) == value


def test_pod_gpus_counts_requests_limits_and_init_containers() -> None:
    def pod(
        containers: list[dict[str, Any]], inits: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return {"spec": {"containers": containers, "initContainers": inits or []}}

    def c(
        requests: int | None = None, limits: int | None = None, restart: str | None = None
    ) -> dict[str, Any]:
        res: dict[str, Any] = {}
        if requests is not None:
            res["requests"] = {"nvidia.com/gpu": str(requests)}
        if limits is not None:
            res["limits"] = {"nvidia.com/gpu": str(limits)}
        out: dict[str, Any] = {"resources": res}
        if restart:
            out["restartPolicy"] = restart
        return out

    assert o.pod_gpus(pod([c(requests=2), c(limits=1)]), "nvidia.com/gpu") == 3
    assert o.pod_gpus(pod([c(requests=1)], [c(requests=4)]), "nvidia.com/gpu") == 4
    assert (
        o.pod_gpus(pod([c(requests=1)], [c(requests=2, restart="Always")]), "nvidia.com/gpu") == 3
    )
    assert o.pod_gpus(pod([c()]), "nvidia.com/gpu") == 0


def test_draining_again_as_drained_writes_nothing() -> None:
    reason = "computectl: xid: 79"
    patch = o.drain_patch(node(), reason, "drain")
    drained = node(
        cordoned=True, taints=patch["spec"]["taints"], annotations={o.REASON_ANNOTATION: reason}
    )
    assert o.drained_as(drained, reason, "drain")
    assert not o.drained_as(drained, "computectl: xid: 48", "drain")  # a new reason
    assert not o.drained_as(drained, reason, "down")  # NoExecute now
    assert not o.drained_as(node(), reason, "drain")
    uncordoned = node(taints=patch["spec"]["taints"], annotations={o.REASON_ANNOTATION: reason})
    assert not o.drained_as(uncordoned, reason, "drain")  # someone lifted the cordon
