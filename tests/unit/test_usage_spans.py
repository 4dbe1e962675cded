"""Pods as spans for the control plane to count (uid, pool, model, GPUs, start, end, ended),
and the budget's stop: a ResourceQuota of 0 GPUs of computectl's beside the tenant's own,
taken back alone. Over the in-memory API server (`InMemoryKube`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import Conflict
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes import usage, usage_budget
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.kubernetes.usage import KubernetesUsage, Malformed, PodSpan
from scheduler.tenants import GpuQuota, TenantSpec

UNTIL = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NODES = {"kwok-gpu-001": ("training", "H100-SXM")}
VALUES = {"training": "training"}
GPU = "nvidia.com/gpu"
POOLS = {"training": {"computectl.io/pool": "training"}}


def gpu_pod(
    uid: Any = "0b5e5a2c-1111-4aaa-9bbb-000000000001",
    gpus: int = 4,
    phase: str = "Running",
    finished: str | None = None,
    namespace: str = "tenant-t",
    name: str = "p",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "startTime": "2026-03-02T08:00:00Z"}
    if finished is not None:
        status["containerStatuses"] = [{"state": {"terminated": {"finishedAt": finished}}}]
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {
            "nodeName": "kwok-gpu-001",
            "nodeSelector": {"computectl.io/pool": "training"},
            "containers": [{"name": "m", "resources": {"requests": {GPU: str(gpus)}}}],
        },
        "status": status,
    }


def test_a_running_pod_spans_to_until_an_ended_one_to_its_end() -> None:
    running = usage.pod_span(gpu_pod(), "t", NODES, VALUES, GPU, UNTIL)
    assert running == PodSpan(
        "0b5e5a2c-1111-4aaa-9bbb-000000000001",
        "t",
        "training",
        "H100-SXM",
        4,
        datetime(2026, 3, 2, 8, tzinfo=UTC),
        UNTIL,
        False,
    )
    done = usage.pod_span(
        gpu_pod(phase="Succeeded", finished="2026-03-02T09:30:00Z"), "t", NODES, VALUES, GPU, UNTIL
    )
    assert done is not None and done.ended and done.end == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert usage.pod_span(gpu_pod(gpus=0), "t", NODES, VALUES, GPU, UNTIL) is None


@pytest.mark.parametrize("uid", [None, "", 7, "a b", "x" * 65, "../etc", ["u"]])
def test_a_pod_without_a_sound_uid_is_malformed(uid: Any) -> None:
    with pytest.raises(Malformed):
        usage.pod_span(gpu_pod(uid=uid), "t", NODES, VALUES, GPU, UNTIL)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    uid=_json,
    meta_extra=st.dictionaries(st.sampled_from(["uid", "name", "namespace"]), _json, max_size=2),
    status=st.dictionaries(
        st.sampled_from(["phase", "startTime", "containerStatuses"]), _json, max_size=3
    ),
)
def test_hostile_pods_give_a_sound_span_or_malformed(
    uid: Any, meta_extra: dict[str, Any], status: dict[str, Any]
) -> None:
    p = gpu_pod(uid=uid)
    p["metadata"].update(meta_extra)
    p["status"].update(status)
    try:
        span = usage.pod_span(p, "t", NODES, VALUES, GPU, UNTIL)
    except Malformed:
        return
    if span is not None:
        assert span.gpus > 0 and span.start <= span.end and span.uid == p["metadata"]["uid"]


def cluster() -> tuple[InMemoryKube, KubernetesUsage]:
    kube = InMemoryKube()
    kube.add_node("kwok-gpu-001", {"computectl.io/pool": "training"})
    for t in ("t", "u"):
        kube.apply_object(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": to.namespace_of(t), "labels": to.marker(t)},
            }
        )
    return kube, KubernetesUsage(kube, POOLS)


def test_spans_of_every_tenant_or_one_and_bad_pods_counted_apart() -> None:
    kube, source = cluster()
    kube.pods[("tenant-t", "a")] = gpu_pod(name="a")
    kube.pods[("tenant-u", "b")] = gpu_pod(uid="0b5e5a2c-2222", namespace="tenant-u", name="b")
    kube.pods[("tenant-u", "c")] = gpu_pod(uid="bad uid", namespace="tenant-u", name="c")
    # Not a tenant's namespace: not counted.
    kube.pods[("default", "d")] = gpu_pod(uid="0b5e5a2c-3333", namespace="default", name="d")
    every = source.spans(UNTIL)
    assert sorted(s.tenant for s in every.spans) == ["t", "u"] and every.skipped == 1
    only = source.spans(UNTIL, "t")
    assert [s.tenant for s in only.spans] == ["t"] and only.skipped == 0


def test_the_stop_is_an_object_of_its_own_and_goes_alone() -> None:
    kube, source = cluster()
    own = to.quota(_spec("t"), GPU)
    kube.apply_object(own)
    assert source.stop_new_gpus("t") is True
    assert source.stop_new_gpus("t") is True  # again: the same object
    stop = kube.get_object("ResourceQuota", usage_budget.BUDGET_QUOTA, "tenant-t")
    assert stop is not None and stop["spec"]["hard"] == {f"requests.{GPU}": "0"}
    assert to.is_ours(stop) and usage_budget.stopped(kube, "t")
    source.allow_new_gpus("t")
    assert kube.get_object("ResourceQuota", usage_budget.BUDGET_QUOTA, "tenant-t") is None
    # The tenant's own quota is as it was.
    kept = kube.get_object("ResourceQuota", to.QUOTA, "tenant-t")
    assert kept is not None and kept["spec"] == own["spec"]
    # No namespace of computectl's here: nothing to stop, nothing made.
    assert source.stop_new_gpus("elsewhere") is False
    assert kube.get_object("ResourceQuota", usage_budget.BUDGET_QUOTA, "tenant-elsewhere") is None


def test_someone_elses_object_of_that_name_is_left_alone() -> None:
    kube, source = cluster()
    theirs = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": usage_budget.BUDGET_QUOTA, "namespace": "tenant-t"},
        "spec": {"hard": {"pods": "100"}},
    }
    kube.apply_object(theirs)
    with pytest.raises(Conflict, match="outside computectl"):
        source.stop_new_gpus("t")
    source.allow_new_gpus("t")
    assert kube.get_object("ResourceQuota", usage_budget.BUDGET_QUOTA, "tenant-t") is not None


def _spec(name: str) -> TenantSpec:
    return TenantSpec(name, quotas=(GpuQuota("training", "H100-SXM", 8),))
