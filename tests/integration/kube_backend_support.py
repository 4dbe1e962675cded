"""What the Kubernetes backend's integration tests share (test_kubernetes_backend.py,
test_kubernetes_drain_budgets.py, test_kubernetes_cluster_edges.py): a control plane over
the kwok pools, a namespace of the tenant "acme", and looks at the cluster with the official
client, as kubectl would; a budget that holds a pod, and kwok taken over after a restart
(test_kubernetes_batch.py, test_kubernetes_tenants.py and test_backend_contract.py use those
too). A test module takes the fixtures as ``rt, ns = kb.rt, kb.ns``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.domain import Node
from compute.runtime import Runtime
from scheduler.kubernetes import KubernetesWorkloadManager
from tests.integration.conftest import KUBE_NODES, KUBE_TEST_LABEL, KubeCluster, runtime_over

OPERATOR = "operator:test"
TAINT = "computectl.io/unhealthy"
REASON = "computectl.io/drain-reason"
WAS_CORDONED = "computectl.io/was-cordoned"


@pytest.fixture
def rt(kube: KubeCluster, tmp_path: Path) -> Iterator[Runtime]:
    """A control plane whose pools are the kwok pools (the TOML testenv writes)."""
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    for wm, _ in runtime.backends.groups():
        wm.client.close()  # type: ignore[attr-defined]


@pytest.fixture
def ns(api: Any) -> str:
    name = f"kt-{uuid.uuid4().hex[:8]}"
    api.create_namespace(
        {
            "metadata": {
                "name": name,
                "labels": {KUBE_TEST_LABEL: "true", "computectl.io/tenant": "acme"},
            }
        }
    )
    return name


def stored(rt: Runtime, name: str) -> Node:
    node = rt.store.node(name)
    assert node is not None
    return node


def backend(rt: Runtime) -> KubernetesWorkloadManager:
    wm = rt.backends.for_pool("training")
    assert isinstance(wm, KubernetesWorkloadManager)
    return wm


def gpu_deployment(api: Any, ns: str, name: str, node: str, gpus: int = 4) -> None:
    """A Deployment of one pod requesting ``gpus`` pinned (by the scheduler) to ``node``."""
    from kubernetes import client

    client.AppsV1Api(api.api_client).create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": node},
                        "containers": [
                            {
                                "name": "main",
                                "image": "registry.k8s.io/pause:3.10",
                                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                            }
                        ],
                    },
                },
            },
        },
    )


def running_pods(api: Any, ns: str, node: str) -> list[str]:
    pods = api.list_namespaced_pod(ns, field_selector=f"spec.nodeName={node}").items
    return sorted(
        p.metadata.name
        for p in pods
        if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
    )


def pods_on(api: Any, ns: str, node: str) -> list[str]:
    """Every pod of ``ns`` bound to ``node``, terminating ones too."""
    pods = api.list_namespaced_pod(ns, field_selector=f"spec.nodeName={node}").items
    return sorted(p.metadata.name for p in pods)


def node_marks(api: Any, name: str) -> tuple[bool, dict[str, str], dict[str, str]]:
    """(cordoned, taints key → "value:effect", computectl's annotations)."""
    node = api.read_node(name)
    taints = {
        t.key: f"{t.value or ''}:{t.effect}"
        for t in node.spec.taints or []
        if t.key != "node.kubernetes.io/unschedulable"  # the node controller's mirror of a cordon
    }
    notes = {
        k: v for k, v in (node.metadata.annotations or {}).items() if k.startswith("computectl.io/")
    }
    return bool(node.spec.unschedulable), taints, notes


def protected_server(kube: KubeCluster, api: Any, ns: str, node: str) -> tuple[Any, str]:
    """A GPU pod on ``node`` whose PodDisruptionBudget (minAvailable 1) refuses its eviction:
    (the policy API, the pod's name)."""
    from kubernetes import client

    gpu_deployment(api, ns, "server", node, gpus=8)
    policy = client.PolicyV1Api(api.api_client)
    policy.create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "server"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "server"}}},
        },
    )
    kube.wait("the pod to run", lambda: bool(running_pods(api, ns, node)))
    kube.wait(
        "the budget to count the pod",
        lambda: (
            (s := policy.read_namespaced_pod_disruption_budget("server", ns).status) is not None
            and s.current_healthy == 1
            and s.disruptions_allowed == 0
        ),
    )
    [pod] = running_pods(api, ns, node)
    return policy, pod


def relax(kube: KubeCluster, policy: Any, ns: str) -> None:
    """The budget's owner lets the pod go (minAvailable 0)."""
    policy.patch_namespaced_pod_disruption_budget(
        "server", ns, {"spec": {"minAvailable": 0}}, _content_type="application/merge-patch+json"
    )
    kube.wait(
        "the budget to allow a disruption",
        lambda: (
            (s := policy.read_namespaced_pod_disruption_budget("server", ns).status) is not None
            and (s.disruptions_allowed or 0) >= 1
        ),
    )


def exited(pid: int) -> bool:
    """Gone, or a zombie nobody reaps (the daemons outlive the testenv script that started them)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kwok_takes_over(kube: KubeCluster) -> None:
    """`up` after a crash restarts kwok too; the new kwok waits for the old one's node leases
    to expire (40 s) before it plays the nodes' kubelets again. Deleting them hands over now."""
    from kubernetes import client

    core = kube.core()
    leases = client.CoordinationV1Api(core.api_client)
    try:
        leases.delete_collection_namespaced_lease("kube-node-lease")
        kube.wait(
            "kwok to hold every node's lease",
            lambda: len(leases.list_namespaced_lease("kube-node-lease").items) >= KUBE_NODES,
        )
    finally:
        core.api_client.close()
