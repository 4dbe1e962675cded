"""Which fault hit which pod, on a real Kubernetes API server (testenv/kubernetes, kwok's GPU
nodes): a tenant's GPU pod bound to a node computectl drains for a fault is the tenant's
incident, with its GPUs from its start to the drain, though the pod is gone from the API
when the sweep looks and the look is another replica's, whose backend never saw the pod
(what the drain evicted is kept with its event); a pod that fails on a node with a finding is linked to it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from compute.runtime import Runtime
from compute.services import job_impact
from compute.services.drain_work import KEY
from compute.store import impact as kept
from compute.tenants.spec import parse_tenant
from compute.testing import result
from tests.integration.conftest import KubeCluster, runtime_over
from tests.integration.test_attention import drains, post_fatal

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(kube: KubeCluster, api: Any, tmp_path: Path) -> Iterator[tuple[Runtime, str]]:
    name = f"ki{uuid.uuid4().hex[:6]}"
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    spec = parse_tenant(
        {"name": name, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 16}]},
        runtime.settings.effective_pools,
    )
    runtime.tenants.apply(spec, actor="operator:test")
    yield runtime, name
    runtime.close()
    ns = f"tenant-{name}"
    try:
        api.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
        api.delete_namespace(ns, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def test_a_pod_on_a_node_drained_for_a_fault_is_its_tenants_incident(
    rt: tuple[Runtime, str], kube: KubeCluster, api: Any, tmp_path: Path
) -> None:
    runtime, tenant = rt
    ns = f"tenant-{tenant}"
    pod = {
        "metadata": {"name": "train"},
        "spec": {
            "nodeSelector": {"computectl.io/pool": "training"},
            "containers": [
                {
                    "name": "m",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": "4"}},
                }
            ],
        },
    }
    api.create_namespaced_pod(ns, pod)

    def read() -> Any:
        return api.read_namespaced_pod("train", ns)

    kube.wait(
        "the pod to run",
        lambda: read().status.phase == "Running" and read().status.start_time is not None,
        60,
    )
    node = read().spec.node_name
    started: datetime = read().status.start_time
    time.sleep(2)  # some GPU time to lose

    post_fatal(runtime, node)
    assert runtime.act_on_attention() == 1
    drain = drains(runtime, node)[0]
    assert [e["id"] for e in drain.detail[KEY]] == [f"{ns}/train"]
    # The pod finishes going before the sweep looks (kwok ends it at once; else it is
    # ended here): the API no longer has it, and only the drain's event remembers it.
    try:
        api.delete_namespaced_pod("train", ns, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise

    def gone() -> bool:
        try:
            read()
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    kube.wait("the pod to be gone", gone, 60)
    # The control plane that drained stops acting before its next sweep (it died, or lost
    # its lease): another replica, with its own backend, sweeps and looks.
    replica = runtime_over(kube.computectl_toml, tmp_path)  # its first sweep looks
    try:
        assert replica.backends.for_pool("training") is not runtime.backends.for_pool("training")
        assert job_impact.after_sweep(replica) == []  # once more: nothing new, no error
        view = job_impact.impact_view(
            job_impact.tenant_impact(replica.store, tenant, None, replica.clock.now())
        )
    finally:
        replica.close()
    incidents = view["incidents"]
    assert isinstance(incidents, list) and len(incidents) == 1
    (hit,) = incidents
    assert (hit["work"], hit["node"], hit["tenant"], hit["cause"], hit["gpus"]) == (
        f"{ns}/train", node, tenant, "drain", 4,
    )  # fmt: skip
    expected = 4 * (drain.at - started).total_seconds() / 3600
    # The API keeps whole seconds: a second either way on each of 4 GPUs.
    assert abs(float(hit["gpu_hours_lost"]) - expected) <= 4 * 1.01 / 3600
    assert [h.work for h in kept.hits(runtime.store)] == [f"{ns}/train"]


def test_a_pod_that_failed_on_a_node_with_a_finding_is_linked_to_it(
    rt: tuple[Runtime, str], kube: KubeCluster, api: Any
) -> None:
    runtime, tenant = rt
    ns = f"tenant-{tenant}"
    pod = {
        "metadata": {"name": "crash"},
        "spec": {
            "nodeSelector": {"computectl.io/pool": "training"},
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "m",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": "2"}},
                }
            ],
        },
    }
    api.create_namespaced_pod(ns, pod)
    kube.wait(
        "the pod to run", lambda: api.read_namespaced_pod("crash", ns).status.phase == "Running"
    )
    running = api.read_namespaced_pod("crash", ns)
    node, started = running.spec.node_name, running.status.start_time
    runtime.ingest.ingest(node, [result(node, "gpu_count", at=runtime.clock.now())])
    # The pod fails as the kubelet reports a crash (kwok leaves the status it is given).
    ended = datetime.now(UTC).replace(microsecond=0)
    status = {
        "phase": "Failed",
        "containerStatuses": [
            {
                "name": "m",
                "image": "registry.k8s.io/pause:3.10",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 137,
                        "startedAt": started.isoformat(),
                        "finishedAt": ended.isoformat(),
                    }
                },
            }
        ],
    }
    api.patch_namespaced_pod_status("crash", ns, {"status": status})
    kube.wait(
        "the pod to have failed",
        lambda: api.read_namespaced_pod("crash", ns).status.phase == "Failed",
    )
    assert job_impact.after_sweep(runtime) == []
    (hit,) = kept.hits(runtime.store, tenant)
    assert (hit.work, hit.node, hit.cause, hit.state, hit.check, hit.end) == (
        f"{ns}/crash", node, "node_fail", "failed", "gpu_count", ended,
    )  # fmt: skip
    assert abs(hit.gpu_hours - 2 * (ended - started).total_seconds() / 3600) < 1e-6
