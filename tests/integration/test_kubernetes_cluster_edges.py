"""The Kubernetes backend at the cluster's edges, on a real API server: the node check's
DaemonSet and the burn-in Job on kwok nodes, credentials without rights, and a write between
computectl's read and its patch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from compute.runtime import Runtime
from scheduler.errors import Conflict, PermissionDenied
from scheduler.kubernetes import KubeClient, KubernetesWorkloadManager
from tests.integration import kube_backend_support as kb
from tests.integration.conftest import KUBE_NODES, KubeCluster
from tests.integration.kube_backend_support import (
    OPERATOR,
    REASON,
    TAINT,
    node_marks,
)

pytestmark = pytest.mark.integration

# The shared fixtures, by their names here.
rt, ns = kb.rt, kb.ns


def _manifests(name: str, ns: str, node: str = "") -> list[dict[str, Any]]:
    from tests.playbook_templates import ROLES, render

    # What the kubernetes_health role applies: the burn-in Job as a plain file (the control
    # plane fills in its node), the DaemonSet rendered with the role's defaults.
    if name == "burnin-job.yaml":
        text = (ROLES / "kubernetes_health" / "files" / name).read_text()
    else:
        text = render("kubernetes_health", name)
    text = text.replace("@NODE@", node)
    docs = [d for d in yaml.safe_load_all(text) if d and d["kind"] != "Namespace"]
    for d in docs:
        d["metadata"]["namespace"] = ns
    return docs


def test_the_node_check_daemonset_and_burn_in_job_run_on_kwok_nodes(
    rt: Runtime, kube: KubeCluster, api: Any, ns: str
) -> None:
    from kubernetes import client, utils

    rt.nodes.drain("kwok-gpu-008", "burn-in", actor=OPERATOR)
    utils.create_from_yaml(api.api_client, yaml_objects=_manifests("node-check-daemonset.yaml", ns))
    apps = client.AppsV1Api(api.api_client)

    def daemons_ready() -> bool:
        s = apps.read_namespaced_daemon_set("computectl-node-check", ns).status
        return s.desired_number_scheduled == KUBE_NODES and s.number_ready == KUBE_NODES

    kube.wait("a node check pod Ready on every GPU node", daemons_ready, 60)
    pods = api.list_namespaced_pod(
        ns, label_selector="app.kubernetes.io/name=computectl-node-check"
    )
    # The drained node too: it must keep reporting to prove it is healthy again.
    assert sorted(p.spec.node_name for p in pods.items) == [
        f"kwok-gpu-{i:03d}" for i in range(1, KUBE_NODES + 1)
    ]
    container = pods.items[0].spec.containers[0]
    assert not (container.resources.requests or {}).get("nvidia.com/gpu")

    utils.create_from_yaml(
        api.api_client, yaml_objects=_manifests("burnin-job.yaml", ns, "kwok-gpu-008")
    )
    batch = client.BatchV1Api(api.api_client)
    kube.wait(
        "the burn-in Job to complete",
        lambda: (
            batch.read_namespaced_job("computectl-burnin-kwok-gpu-008", ns).status.succeeded == 1
        ),
        60,
    )
    [pod] = api.list_namespaced_pod(
        ns, label_selector="app.kubernetes.io/name=computectl-burnin"
    ).items
    assert pod.spec.node_name == "kwok-gpu-008"
    assert pod.spec.containers[0].resources.requests == {"nvidia.com/gpu": "8"}


def test_credentials_without_rights_are_permission_denied(
    kube: KubeCluster, api: Any, ns: str, tmp_path: Path
) -> None:
    """A ServiceAccount with no RBAC binding: the API server answers 403."""
    api.create_namespaced_service_account(ns, {"metadata": {"name": "nobody"}})
    token = api.create_namespaced_service_account_token(
        "nobody", ns, {"spec": {"expirationSeconds": 600}}
    ).status.token
    admin = yaml.safe_load(kube.kubeconfig.read_text())
    admin["users"] = [{"name": "nobody", "user": {"token": token}}]
    admin["contexts"] = [
        {"name": "nobody", "context": {"cluster": admin["clusters"][0]["name"], "user": "nobody"}}
    ]
    admin["current-context"] = "nobody"
    kubeconfig = tmp_path / "nobody.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(admin))
    wm = KubernetesWorkloadManager.create(
        {"training": {"computectl.io/pool": "training"}}, kubeconfig=kubeconfig, context="nobody"
    )
    try:
        with pytest.raises(PermissionDenied, match=f"system:serviceaccount:{ns}:nobody"):
            wm.list_nodes()
    finally:
        wm.client.close()  # type: ignore[attr-defined]


def test_a_write_between_read_and_patch_is_a_conflict_and_the_drain_retries(
    kube: KubeCluster, api: Any
) -> None:
    """A real concurrent writer (an operator labelling the node) wins the race once."""
    seam = KubeClient(kube.kubeconfig)
    stale = seam.get_node("kwok-gpu-006")
    api.patch_node("kwok-gpu-006", {"metadata": {"labels": {"example.com/rack": "r1"}}})
    with pytest.raises(Conflict):
        seam.patch_node(
            "kwok-gpu-006",
            {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}},
        )

    class Racing(KubeClient):
        writes = 0

        def patch_node(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
            if not self.writes:  # someone else writes between our read and our patch
                self.writes += 1
                api.patch_node(name, {"metadata": {"labels": {"example.com/rack": "r2"}}})
            return super().patch_node(name, patch)

    racing = Racing(kube.kubeconfig)
    wm = KubernetesWorkloadManager(racing, {"training": {"computectl.io/pool": "training"}})
    try:
        wm.drain("kwok-gpu-006", "computectl: xid: 79")
        cordoned, taints, notes = node_marks(api, "kwok-gpu-006")
        assert (cordoned, taints, notes) == (
            True,
            {TAINT: "xid:NoSchedule"},
            {REASON: "computectl: xid: 79"},
        )
        assert api.read_node("kwok-gpu-006").metadata.labels["example.com/rack"] == "r2"
    finally:
        seam.close()
        racing.close()
        api.patch_node("kwok-gpu-006", {"metadata": {"labels": {"example.com/rack": None}}})
