"""A node check's pod-bound ServiceAccount token is accepted for its pod's node only, on a real
API server (testenv/kubernetes; kwok plays the nodes): TokenReview, the configured account and
audience, the pod's life, and the control plane's front door end to end.

Tokens are requested the way the kubelet requests the projected one of the node check's
DaemonSet (the kubernetes_health role's node-check-daemonset.yaml.j2): a TokenRequest for
audience computectl, bound to the pod (boundObjectRef), which the API server stamps with the
pod's node.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.auth.principal import local_principal
from compute.auth.serviceaccount import NodeIdentities, node_identities, pool_in
from compute.services import audit
from health.result import CheckResult, Status, Suite
from scheduler.identity import NodeIdentity
from scheduler.kubernetes import KubeClient
from scheduler.kubernetes.identity import NODE_NAME, KubernetesNodeIdentity
from scheduler.kubernetes.token_review import ReviewedToken
from tests.integration.conftest import (
    KUBE_NODES,
    KUBE_TEST_LABEL,
    KubeCluster,
    runtime_over,
)
from tests.playbook_templates import manifests

pytestmark = pytest.mark.integration

ACCOUNT = "computectl-node-check"
AUDIENCE = "computectl"
POOLS = ("training", "inference")
NODE, OTHER = "kwok-gpu-003", "kwok-gpu-004"


def make_pod(api: Any, ns: str, name: str, node: str, account: str = ACCOUNT) -> Any:
    return api.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "serviceAccountName": account,
                "automountServiceAccountToken": False,
                "containers": [{"name": "check", "image": "registry.example.com/node-check"}],
            },
        },
    )


def pod_token(api: Any, ns: str, pod: Any, audience: str = AUDIENCE, account: str = ACCOUNT) -> str:
    """What the kubelet mounts as the pod's projected token."""
    spec: dict[str, Any] = {"audiences": [audience], "expirationSeconds": 3600}
    if pod is not None:
        spec["boundObjectRef"] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": pod.metadata.name,
            "uid": pod.metadata.uid,
        }
    answer = api.create_namespaced_service_account_token(account, ns, {"spec": spec})
    return str(answer.status.token)


def delete_pod(kube: KubeCluster, api: Any, ns: str, name: str) -> None:
    api.delete_namespaced_pod(name, ns, grace_period_seconds=0)

    def gone() -> bool:
        return not [p for p in api.list_namespaced_pod(ns).items if p.metadata.name == name]

    kube.wait(f"pod {name} to go", gone)


@pytest.fixture
def verifier(kube: KubeCluster, node_check_ns: str) -> Iterator[KubernetesNodeIdentity]:
    v = KubernetesNodeIdentity(
        KubeClient(kube.kubeconfig), f"{node_check_ns}/{ACCOUNT}", AUDIENCE, POOLS
    )
    yield v
    v.close()


def test_a_pod_bound_token_is_its_node_while_the_pod_lives(
    kube: KubeCluster, api: Any, node_check_ns: str, verifier: KubernetesNodeIdentity
) -> None:
    ns = node_check_ns
    pod = make_pod(api, ns, "node-check-a", NODE)
    token = pod_token(api, ns, pod)
    assert verifier.verify(token) == NodeIdentity(
        node=NODE, subject=f"sa:{ns}/{ACCOUNT}@node-check-a", pools=frozenset(POOLS)
    )
    # The API server names the node itself (ServiceAccountTokenPodNodeInfo, Kubernetes 1.30+).
    review = verifier.reviewer.review_token(token, [AUDIENCE])
    assert review is not None and review.first(NODE_NAME) == NODE

    delete_pod(kube, api, ns, "node-check-a")
    # The token is bound to that pod: gone, it is no one's (the API server says so at once or
    # within its cache's moment).
    kube.wait("the deleted pod's token to be refused", lambda: verifier.verify(token) is None, 15)


def test_another_accounts_token_or_another_audience_or_no_pod_is_refused(
    api: Any, node_check_ns: str, verifier: KubernetesNodeIdentity
) -> None:
    ns = node_check_ns
    api.create_namespaced_service_account(ns, {"metadata": {"name": "tenant-job"}})
    theirs = make_pod(api, ns, "a-tenant-pod", NODE, account="tenant-job")
    ours = make_pod(api, ns, "node-check-b", NODE)
    assert verifier.verify(pod_token(api, ns, theirs, account="tenant-job")) is None
    assert verifier.verify(pod_token(api, ns, ours, audience="someone-else")) is None
    # A token for the API server itself (its default audience) is not one for computectl.
    server_audience = "https://kubernetes.default.svc.cluster.local"
    assert verifier.verify(pod_token(api, ns, ours, audience=server_audience)) is None
    # The right account and audience but bound to no pod: no node to speak for.
    assert verifier.verify(pod_token(api, ns, None)) is None
    # Garbage and a token signed by someone else never authenticate.
    forged = pod_token(api, ns, ours).rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    assert verifier.verify(forged) is None
    assert verifier.verify("cct_abcd1234_" + "x" * 43) is None
    assert verifier.verify(pod_token(api, ns, ours)) is not None  # and the real one is


def test_a_pod_of_the_account_in_another_namespace_is_refused(
    api: Any, node_check_ns: str, verifier: KubernetesNodeIdentity
) -> None:
    """An account of the same name elsewhere (a tenant's namespace) is another account."""
    ns = f"kt-tenant-{uuid.uuid4().hex[:6]}"
    api.create_namespace({"metadata": {"name": ns, "labels": {KUBE_TEST_LABEL: "true"}}})
    api.create_namespaced_service_account(ns, {"metadata": {"name": ACCOUNT}})
    pod = make_pod(api, ns, "node-check-c", NODE)
    assert verifier.verify(pod_token(api, ns, pod)) is None


class WithoutNodeInfo:
    """The real client, answering as an API server before Kubernetes 1.30 would: reviews
    without the node's name (the pod name and uid are still there)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.pods_read = 0

    def review_token(self, token: str, audiences: Sequence[str]) -> ReviewedToken | None:
        review = self.client.review_token(token, audiences)
        if review is None:
            return None
        extra = {k: v for k, v in review.extra.items() if k != NODE_NAME}
        return ReviewedToken(review.username, review.uid, review.groups, extra, review.audiences)

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        self.pods_read += 1
        return self.client.get_object(kind, name, namespace)

    def close(self) -> None:
        self.client.close()


def test_without_the_reviews_node_name_the_pod_is_read(
    kube: KubeCluster, api: Any, node_check_ns: str
) -> None:
    ns = node_check_ns
    older = WithoutNodeInfo(KubeClient(kube.kubeconfig))
    verifier = KubernetesNodeIdentity(older, f"{ns}/{ACCOUNT}", AUDIENCE, POOLS)
    try:
        pod = make_pod(api, ns, "node-check-d", OTHER)
        token = pod_token(api, ns, pod)
        identity = verifier.verify(token)
        assert identity is not None and identity.node == OTHER and older.pods_read == 1
        delete_pod(kube, api, ns, "node-check-d")
        # Recreated under the same name on another node: the old token is not its.
        make_pod(api, ns, "node-check-d", NODE)
        assert verifier.verify(token) is None
    finally:
        verifier.close()


# -- end to end: the kubernetes_health role's DaemonSet, the control plane's front door -------


def daemonset(api: Any, kube: KubeCluster, ns: str) -> dict[str, Any]:
    """The kubernetes_health role's DaemonSet, rendered for ``ns``: node → its pod."""
    from kubernetes import client, utils

    docs = [
        d
        for d in manifests(
            "kubernetes_health", "node-check-daemonset.yaml", kubernetes_health_namespace=ns
        )
        if d["kind"] not in ("Namespace", "ServiceAccount")  # the fixture made the SA
    ]
    utils.create_from_yaml(api.api_client, yaml_objects=docs)
    apps = client.AppsV1Api(api.api_client)

    def ready() -> bool:
        s = apps.read_namespaced_daemon_set(ACCOUNT, ns).status
        return s.desired_number_scheduled == KUBE_NODES and s.number_ready == KUBE_NODES

    kube.wait("a node check pod on every node", ready, 60)
    pods = api.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/name={ACCOUNT}")
    return {p.spec.node_name: p for p in pods.items}


def result(node: str, at: Any) -> dict[str, Any]:
    return CheckResult(
        node=node, check="gpu_count", version="1", status=Status.PASS, at=at, suite=Suite.PASSIVE
    ).to_dict()


def test_the_daemonsets_token_reports_for_its_node_and_no_other(
    kube: KubeCluster, api: Any, node_check_ns: str, tmp_path: Path
) -> None:
    ns = node_check_ns
    pods = daemonset(api, kube, ns)
    token = pod_token(api, ns, pods[NODE])
    rt = runtime_over(
        kube.computectl_toml, tmp_path, {"node_agent_service_account": f"{ns}/{ACCOUNT}"}
    )
    identities = node_identities(rt.settings, pool_in(rt.store))
    try:
        app = create_app(rt, verifiers=[identities.resolve])
        with TestClient(app) as c:
            auth = {"authorization": f"Bearer {token}"}
            now = rt.clock.now()
            mine = c.post(f"/api/v1/nodes/{NODE}/health", json=[result(NODE, now)], headers=auth)
            assert mine.status_code == 202, mine.text
            before = rt.store.results(OTHER)
            theirs = c.post(
                f"/api/v1/nodes/{OTHER}/health", json=[result(OTHER, now)], headers=auth
            )
            assert theirs.status_code == 403, theirs.text
            assert rt.store.results(OTHER) == before  # nothing changed for the other node
            # Nothing but its own report: not even a read of the fleet.
            assert c.get("/api/v1/nodes", headers=auth).status_code == 403
            assert (
                c.post(
                    f"/api/v1/nodes/{NODE}/drain", json={"reason": "x"}, headers=auth
                ).status_code
                == 403
            )
            who = c.get("/api/v1/whoami", headers=auth).json()
            assert (who["role"], who["node"]) == ("node", NODE)
            # The pod gone (the DaemonSet's pod replaced, the node drained of it), its token
            # is no one's: 401, counted as a failed login.
            delete_pod(kube, api, ns, pods[NODE].metadata.name)
            kube.wait(
                "the deleted pod's token to be refused",
                lambda: (
                    c.post(
                        f"/api/v1/nodes/{NODE}/health", json=[result(NODE, now)], headers=auth
                    ).status_code
                    == 401
                ),
                15,
            )
        stored = rt.store.results(NODE)
        assert stored and stored[0].check == "gpu_count"
        # The refusal is in the audit trail, under the pod's name and its node.
        pod_name = pods[NODE].metadata.name
        refused = [
            e
            for e in audit.read(rt.store, local_principal("test"))
            if e.target == f"/api/v1/nodes/{OTHER}/health"
        ]
        assert [(e.actor, e.result[:13]) for e in refused] == [
            (f"sa:{ns}/{ACCOUNT}@{pod_name} ({NODE})", "refused: 403 ")
        ]
    finally:
        identities.close()
        rt.close()
        for wm, _ in rt.backends.groups():
            wm.client.close()  # type: ignore[attr-defined]


def test_an_unreachable_api_server_is_503_not_401(tmp_path: Path, kube: KubeCluster) -> None:
    """The credential may be good: the node is told to try again, not that it is refused."""
    broken = yaml.safe_load(kube.kubeconfig.read_text())
    broken["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    kubeconfig = tmp_path / "unreachable.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(broken))
    rt = runtime_over(kube.computectl_toml, tmp_path / "cp")
    verifier = KubernetesNodeIdentity(
        KubeClient(kubeconfig, timeout_seconds=2), f"computectl-system/{ACCOUNT}", AUDIENCE, POOLS
    )
    identities = NodeIdentities([verifier], pool_in(rt.store))
    try:
        with TestClient(create_app(rt, verifiers=[identities.resolve])) as c:
            answer = c.post(
                f"/api/v1/nodes/{NODE}/health",
                json=[],
                headers={"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"},
            )
            assert answer.status_code == 503, answer.text
            assert "cannot verify the node credential now" in answer.text
    finally:
        identities.close()
        rt.close()
        for wm, _ in rt.backends.groups():
            wm.client.close()  # type: ignore[attr-defined]
