"""Per-pool GPU quotas of Kubernetes tenants through a real Kueue (testenv/kueue) on the
real test API server (testenv/kubernetes, kwok nodes with 8 nvidia.com/gpu each:
training kwok-gpu-001..006, inference 007..008).

Nothing is mocked: the tenant's objects are written by `KubernetesTenants` (queues on),
admission is Kueue's (its webhooks gate every pod and Job of a tenant namespace, its
scheduler admits them against the tenant's ClusterQueue), and pods run on kwok. Plain
Pods are used where work must keep running: kwok completes a Job's pods at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from scheduler.kubernetes import KubeClient, KubernetesTenants
from scheduler.kubernetes.tenant_queues import LOCAL_QUEUE, cluster_queue_name
from scheduler.tenants import GpuQuota, TenantSpec
from tests.integration.conftest import KubeCluster
from tests.integration.conftest_kueue import Kueue, kueue

pytestmark = pytest.mark.integration
__all__ = ["kueue"]  # the fixture, imported for pytest

POOLS = {p: {"computectl.io/pool": p} for p in ("training", "inference")}
MODEL = "H100-SXM"
GATE = "kueue.x-k8s.io/admission"


@pytest.fixture
def tenants(kube: KubeCluster, kueue: Kueue) -> Iterator[KubernetesTenants]:
    kc = KubeClient(kube.kubeconfig, timeout_seconds=60)
    yield KubernetesTenants(kc, POOLS, queues=True)
    kc.close()


@pytest.fixture
def made(tenants: KubernetesTenants) -> Iterator[Callable[[TenantSpec], str]]:
    """Applies a spec; the tenants it made are deleted with their work afterwards."""
    names: list[str] = []

    def apply(spec: TenantSpec) -> str:
        names.append(spec.name)
        tenants.apply(spec)
        return f"tenant-{spec.name}"

    yield apply
    for name in names:
        tenants.delete(name, force=True, grace_seconds=0, purge_data=True)


@pytest.fixture
def k8s(kube: KubeCluster) -> Iterator[tuple[Any, Any, Any]]:
    core = kube.core()
    api = core.api_client
    yield core, client.BatchV1Api(api), client.CustomObjectsApi(api)
    api.close()


def name() -> str:
    return f"kq{uuid.uuid4().hex[:6]}"


def quota(pool: str, gpus: int) -> GpuQuota:
    return GpuQuota(pool, MODEL, gpus)


def pod_body(pod_name: str, gpus: int, pool: str) -> dict[str, Any]:
    return {
        "metadata": {"name": pod_name},
        "spec": {
            "nodeSelector": {"computectl.io/pool": pool},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def pods(core: Any, ns: str) -> dict[str, Any]:
    return {p.metadata.name: p for p in core.list_namespaced_pod(ns).items}


def running_gpus(core: Any, ns: str, pool: str) -> int:
    return sum(
        int(p.spec.containers[0].resources.limits["nvidia.com/gpu"])
        for p in pods(core, ns).values()
        if p.status.phase == "Running"
        and not p.metadata.deletion_timestamp
        and p.spec.node_selector.get("computectl.io/pool") == pool
    )


def gated(pod: Any) -> bool:
    return any(g.name == GATE for g in pod.spec.scheduling_gates or [])


def workloads(custom: Any, ns: str) -> list[dict[str, Any]]:
    out = custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", ns, "workloads")
    return list(out["items"])


def condition(wl: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (wl.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return dict(c)
    return None


def preemptions(core: Any, ns: str) -> list[str]:
    """Messages of the Preempted events on the namespace's workloads."""
    return [
        e.message
        for e in core.list_namespaced_event(ns).items
        if e.reason == "Preempted" and e.involved_object.kind == "Workload"
    ]


def test_eight_in_x_and_eight_in_y_never_sixteen_in_x(
    kube: KubeCluster, made: Callable[[TenantSpec], str], k8s: tuple[Any, Any, Any]
) -> None:
    core, batch, custom = k8s
    ns = made(TenantSpec(name(), ("alice",), (quota("training", 8), quota("inference", 8))))
    for i in range(3):
        core.create_namespaced_pod(ns, pod_body(f"x{i}", 4, "training"))
    kube.wait("8 GPUs running in training", lambda: running_gpus(core, ns, "training") == 8, 60)
    for i in range(2):
        core.create_namespaced_pod(ns, pod_body(f"y{i}", 4, "inference"))
    kube.wait("8 GPUs running in inference", lambda: running_gpus(core, ns, "inference") == 8, 60)
    # Training has 48 GPUs free on its nodes, and the tenant's summed ResourceQuota (16)
    # would let the third pod in: Kueue keeps it gated, unadmitted, on the pool's quota.
    waiting = [p for p in pods(core, ns).values() if p.status.phase != "Running"]
    assert [p.metadata.name for p in waiting] == [
        next(n for n in ("x0", "x1", "x2") if pods(core, ns)[n].status.phase != "Running")
    ]
    assert gated(waiting[0]) and not waiting[0].spec.node_name
    assert running_gpus(core, ns, "training") == 8
    pending = [w for w in workloads(custom, ns) if not condition(w, "QuotaReserved")]
    assert len(pending) == 1
    # A Job asking 16 GPUs in training (2 pods x 8) is held suspended, never admitted.
    job = {
        "metadata": {"name": "big"},
        "spec": {
            "parallelism": 2,
            "completions": 2,
            "template": {
                "spec": pod_body("", 8, "training")["spec"] | {"restartPolicy": "Never"},
            },
        },
    }
    batch.create_namespaced_job(ns, job)
    kube.wait(
        "the Job's workload",
        lambda: any(w["metadata"]["name"].startswith("job-big-") for w in workloads(custom, ns)),
        30,
    )
    big = next(w for w in workloads(custom, ns) if w["metadata"]["name"].startswith("job-big-"))
    assert big["spec"]["queueName"] == LOCAL_QUEUE  # named none: the namespace's default
    assert not condition(big, "QuotaReserved") and not condition(big, "Admitted")
    assert batch.read_namespaced_job("big", ns).spec.suspend is True
    assert running_gpus(core, ns, "training") == 8 and running_gpus(core, ns, "inference") == 8


def test_the_internal_tenant_borrows_idle_gpus_and_is_preempted_when_the_customer_wants_them(
    kube: KubeCluster, made: Callable[[TenantSpec], str], k8s: tuple[Any, Any, Any]
) -> None:
    core, _batch, custom = k8s
    customer = made(TenantSpec(name(), ("alice",), (quota("training", 16),)))
    # The operator's own training bought nothing in training: it may only borrow there.
    internal = made(TenantSpec(name(), ("ops",), (quota("training", 0),), internal=True))
    for i in range(2):
        core.create_namespaced_pod(internal, pod_body(f"train{i}", 8, "training"))
    kube.wait(
        "the internal tenant to run 16 borrowed GPUs",
        lambda: running_gpus(core, internal, "training") == 16,
        60,
    )
    # A third would need more than the cohort holds: it waits.
    core.create_namespaced_pod(internal, pod_body("train2", 8, "training"))
    kube.wait(
        "the third internal pod's workload",
        lambda: len(workloads(custom, internal)) == 3,
        30,
    )
    assert running_gpus(core, internal, "training") == 16
    # The customer wants 8 of its GPUs back: one internal workload is preempted.
    core.create_namespaced_pod(customer, pod_body("job", 8, "training"))
    kube.wait(
        "the customer's pod to run",
        lambda: running_gpus(core, customer, "training") == 8,
        90,
    )
    kube.wait(
        "the internal tenant to be down to 8",
        lambda: running_gpus(core, internal, "training") == 8,
        60,
    )
    # Kueue records the preemption on the workload; the event outlives a plain pod's
    # workload, which goes with its pod.
    kube.wait(
        "Kueue's preemption event",
        lambda: bool(preemptions(core, internal)),
        30,
    )
    (message,) = preemptions(core, internal)
    assert "reclamation within the cohort" in message, message
    # The customer's queue never borrows: its cluster queue holds at most what it bought.
    cq = custom.get_cluster_custom_object(
        "kueue.x-k8s.io", "v1beta2", "clusterqueues", cluster_queue_name(customer[7:])
    )
    limits = [
        r.get("borrowingLimit")
        for g in cq["spec"]["resourceGroups"]
        for f in g["flavors"]
        for r in f["resources"]
    ]
    assert limits == ["0"]


def test_apply_is_idempotent_and_takes_back_a_hand_edited_queue(
    tenants: KubernetesTenants, made: Callable[[TenantSpec], str], k8s: tuple[Any, Any, Any]
) -> None:
    _core, _batch, custom = k8s
    spec = TenantSpec(name(), ("alice",), (quota("training", 8), quota("inference", 8)))
    made(spec)
    assert tenants.plan(spec) == []
    cq = cluster_queue_name(spec.name)
    live = custom.get_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues", cq)
    live["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] = "64"
    custom.replace_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues", cq, live)
    changes = tenants.plan(spec)
    assert [c.target for c in changes] == [f"clusterqueue {cq}"]
    assert "=64" in changes[0].before and "=8" in changes[0].after
    tenants.apply(spec)
    assert tenants.plan(spec) == []
