"""The Kubernetes backend against a real API server (testenv/kubernetes), through the Runtime.

Nothing is mocked: computectl talks to kube-apiserver with the official
client; kwok plays the GPU nodes (their pods become Running at once). The
tests look at the cluster with the same client, as kubectl would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from compute.domain import EventKind, Node
from compute.errors import RefusedError
from compute.runtime import Runtime
from health.policy import DrainOwner, Lifecycle
from scheduler.errors import Conflict, NotFound, PermissionDenied
from scheduler.kubernetes import KubeClient, KubernetesWorkloadManager
from scheduler.protocol import DrainReport
from tests.integration.conftest import KUBE_NODES, KUBE_TEST_LABEL, KubeCluster, runtime_over

pytestmark = pytest.mark.integration

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


def test_sweep_reads_nodes_pods_and_tenants(
    rt: Runtime, kube: KubeCluster, api: Any, ns: str
) -> None:
    nodes = {n.name: n for n in rt.store.nodes()}
    assert len(nodes) == KUBE_NODES
    assert {n: nodes[n].pool for n in nodes if nodes[n].pool == "inference"} == {
        "kwok-gpu-007": "inference",
        "kwok-gpu-008": "inference",
    }
    assert {(n.gpu_model, n.gpu_count, n.state) for n in nodes.values()} == {
        ("H100-SXM", 8, Lifecycle.IN_SERVICE)
    }
    assert {p.name: p.backend for p in rt.store.pools()} == {
        "training": "kubernetes",
        "inference": "kubernetes",
    }
    gpu_deployment(api, ns, "trainer", "kwok-gpu-006", gpus=3)
    kube.wait("the pod to run", lambda: bool(running_pods(api, ns, "kwok-gpu-006")))
    rt.sweep()
    node = stored(rt, "kwok-gpu-006")
    assert (node.jobs_running, node.gpus_allocated) == (1, 3)
    [pod] = running_pods(api, ns, "kwok-gpu-006")
    assert {(a.tenant, a.pool, a.node, a.gpus, a.job) for a in rt.store.allocations()} == {
        ("acme", "training", "kwok-gpu-006", 3, f"{ns}/{pod}")
    }
    wm = backend(rt)
    assert [(j.id, j.tenant, j.gpus, j.state) for j in wm.jobs_on("kwok-gpu-006")] == [
        (f"{ns}/{pod}", "acme", 3, "running")
    ]
    with pytest.raises(NotFound):
        wm.node("kwok-gpu-999")
    with pytest.raises(NotFound):
        wm.drain("kwok-gpu-999", "computectl: test")


def test_drain_cordons_taints_and_evicts_and_resume_removes_exactly_that(
    rt: Runtime, kube: KubeCluster, api: Any, ns: str
) -> None:
    gpu_deployment(api, ns, "trainer", "kwok-gpu-001")
    kube.wait("the pod to run", lambda: bool(running_pods(api, ns, "kwok-gpu-001")))
    rt.sweep()
    assert stored(rt, "kwok-gpu-001").jobs_running == 1

    node = rt.nodes.drain("kwok-gpu-001", "fan noise", actor=OPERATOR)
    assert node.state is Lifecycle.DRAINING  # the pod was running when the drain began
    kube.wait("the pod to be evicted", lambda: not running_pods(api, ns, "kwok-gpu-001"))
    assert node_marks(api, "kwok-gpu-001") == (
        True,
        {TAINT: "operator:NoSchedule"},
        {REASON: "computectl: operator: fan noise"},
    )
    # The Deployment's replacement pod cannot land on the cordoned node: it stays Pending.
    kube.wait(
        "only an unscheduled replacement pod",
        lambda: [p.spec.node_name for p in api.list_namespaced_pod(ns).items] == [None],
    )
    rt.sweep()
    node = stored(rt, "kwok-gpu-001")
    assert (node.state, node.jobs_running, node.drain_owner) == (
        Lifecycle.DRAINED,
        0,
        DrainOwner.COMPUTECTL,
    )
    status = backend(rt).node("kwok-gpu-001")
    assert (status.drain, status.state) == (True, f"Ready,SchedulingDisabled,Tainted({TAINT})")

    # Idempotent: draining again only replaces the reason (and the taint's effect).
    backend(rt).drain("kwok-gpu-001", "computectl: xid: 79", "down")
    assert node_marks(api, "kwok-gpu-001") == (
        True,
        {TAINT: "xid:NoExecute"},
        {REASON: "computectl: xid: 79"},
    )

    rt.nodes.resume("kwok-gpu-001", actor=OPERATOR, skip_burn_in=True)
    assert node_marks(api, "kwok-gpu-001") == (False, {}, {})
    kube.wait("the replacement pod to run", lambda: bool(running_pods(api, ns, "kwok-gpu-001")))
    rt.sweep()
    assert stored(rt, "kwok-gpu-001").state is Lifecycle.IN_SERVICE


def test_a_disruption_budget_keeps_its_pod_until_a_down_drain(
    rt: Runtime, kube: KubeCluster, api: Any, ns: str
) -> None:
    from kubernetes import client

    gpu_deployment(api, ns, "server", "kwok-gpu-002", gpus=8)
    policy = client.PolicyV1Api(api.api_client)
    policy.create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "server"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "server"}}},
        },
    )
    kube.wait("the pod to run", lambda: bool(running_pods(api, ns, "kwok-gpu-002")))
    kube.wait(
        "the budget to count the pod",
        lambda: (
            (s := policy.read_namespaced_pod_disruption_budget("server", ns).status) is not None
            and s.current_healthy == 1
            and s.disruptions_allowed == 0
        ),
    )
    [pod] = running_pods(api, ns, "kwok-gpu-002")
    rt.sweep()

    assert rt.nodes.drain("kwok-gpu-002", "bad DIMM", actor=OPERATOR).state is Lifecycle.DRAINING
    reason = stored(rt, "kwok-gpu-002").drain_reason
    report = backend(rt).drain("kwok-gpu-002", reason)
    assert isinstance(report, DrainReport)
    [blocked] = report.blocked
    assert blocked.startswith(f"{ns}/{pod}: ") and "disruption budget" in blocked
    assert running_pods(api, ns, "kwok-gpu-002") == [pod]
    rt.sweep()
    assert stored(rt, "kwok-gpu-002").state is Lifecycle.DRAINING

    # Forcing: "down" deletes the pod whatever its budget says.
    forced = backend(rt).drain("kwok-gpu-002", reason, "down")
    assert forced.blocked == () and [w.id for w in forced.evicted] == [f"{ns}/{pod}"]
    kube.wait("the pod to be deleted", lambda: not running_pods(api, ns, "kwok-gpu-002"))
    assert node_marks(api, "kwok-gpu-002")[1] == {TAINT: "operator:NoExecute"}
    rt.sweep()
    assert stored(rt, "kwok-gpu-002").state is Lifecycle.DRAINED


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


def test_draining_again_retries_an_eviction_the_budget_now_allows(
    rt: Runtime, kube: KubeCluster, api: Any, ns: str
) -> None:
    policy, pod = protected_server(kube, api, ns, "kwok-gpu-003")
    wm = backend(rt)
    reason = "computectl: operator: bad DIMM"
    [blocked] = wm.drain("kwok-gpu-003", reason).blocked
    assert blocked.startswith(f"{ns}/{pod}: ") and "disruption budget" in blocked
    marks = node_marks(api, "kwok-gpu-003")
    # Again, as the sweep does every time: nothing new on the node, the pod still refused.
    [again] = wm.drain("kwok-gpu-003", reason).blocked
    assert again.startswith(f"{ns}/{pod}: ")
    assert node_marks(api, "kwok-gpu-003") == marks
    assert running_pods(api, ns, "kwok-gpu-003") == [pod]

    relax(kube, policy, ns)
    let_go = wm.drain("kwok-gpu-003", reason)
    # The report names the pod as it was: the API forgets it once it is gone.
    assert let_go.blocked == () and [w.id for w in let_go.evicted] == [f"{ns}/{pod}"]
    assert let_go.evicted[0].gpus == 8 and let_go.evicted[0].node == "kwok-gpu-003"
    # Evicted and gone, not only terminating (a terminating pod still counts as a job).
    kube.wait("the pod to be evicted", lambda: not pods_on(api, ns, "kwok-gpu-003"))
    # Its Deployment's replacement cannot land on the cordoned node.
    assert wm.node("kwok-gpu-003").jobs == 0
    assert wm.drain("kwok-gpu-003", reason) == DrainReport()  # nothing left to do


def test_the_sweep_retries_a_blocked_drain_until_the_node_is_drained(
    rt: Runtime, kube: KubeCluster, api: Any, ns: str
) -> None:
    policy, pod = protected_server(kube, api, ns, "kwok-gpu-004")
    rt.sweep()
    assert rt.nodes.drain("kwok-gpu-004", "bad DIMM", actor=OPERATOR).state is Lifecycle.DRAINING
    rt.sweep()
    assert stored(rt, "kwok-gpu-004").state is Lifecycle.DRAINING
    assert running_pods(api, ns, "kwok-gpu-004") == [pod]

    relax(kube, policy, ns)
    rt.sweep()  # evicts it now
    kube.wait("the pod to be evicted", lambda: not running_pods(api, ns, "kwok-gpu-004"))
    # The retry's event keeps what it ended, for the look at which work the drain hit.
    kept = [w["id"] for e in rt.store.events(node="kwok-gpu-004", kinds=["drain"])
            for w in e.detail.get("evicted", [])]  # fmt: skip
    assert kept == [f"{ns}/{pod}"]
    rt.sweep()
    node = stored(rt, "kwok-gpu-004")
    assert (node.state, node.jobs_running) == (Lifecycle.DRAINED, 0)


def test_a_node_deleted_from_kubernetes_leaves_service_with_an_event(
    rt: Runtime, kube: KubeCluster, api: Any
) -> None:
    from compute.services.capacity import capacity

    def usable() -> int:
        rows = capacity(rt.store.nodes(), rt.store.allocations()).rows
        return sum(
            r.gpus for r in rows if r.pool == "training" and r.state in ("idle", "allocated")
        )

    before = usable()
    try:
        api.delete_node("kwok-gpu-005")
        assert not rt.sweep().errors
        node = stored(rt, "kwok-gpu-005")
        assert node.state is Lifecycle.RETIRED
        kinds = [e.kind for e in rt.store.events(node="kwok-gpu-005", limit=20)]
        assert EventKind.NODE_MISSING in kinds
        assert usable() == before - 8
        rt.sweep()  # and it stays out, with one event
        kinds = [e.kind for e in rt.store.events(node="kwok-gpu-005", limit=20)]
        assert kinds.count(EventKind.NODE_MISSING) == 1
    finally:
        kube.up()  # creates the missing node again, for the other tests


def test_someone_elses_taint_and_cordon_survive(rt: Runtime, api: Any) -> None:
    maintenance = {"key": "example.com/maintenance", "value": "psu", "effect": "NoSchedule"}
    api.patch_node(
        "kwok-gpu-003",
        {"spec": {"taints": [maintenance]}},
        _content_type="application/merge-patch+json",
    )
    rt.nodes.drain("kwok-gpu-003", "lost GPU", actor=OPERATOR)
    assert node_marks(api, "kwok-gpu-003")[1] == {
        "example.com/maintenance": "psu:NoSchedule",
        TAINT: "operator:NoSchedule",
    }
    rt.nodes.resume("kwok-gpu-003", actor=OPERATOR, skip_burn_in=True)
    assert node_marks(api, "kwok-gpu-003") == (
        False,
        {"example.com/maintenance": "psu:NoSchedule"},
        {},
    )

    # An admin's cordon is someone else's drain: computectl neither lifts nor takes it over.
    api.patch_node(
        "kwok-gpu-004",
        {"spec": {"unschedulable": True}},
        _content_type="application/merge-patch+json",
    )
    rt.sweep()
    node = stored(rt, "kwok-gpu-004")
    assert (node.state, node.drain_owner, node.drain_reason) == (
        Lifecycle.DRAINED,
        DrainOwner.EXTERNAL,
        "cordoned outside computectl",
    )
    with pytest.raises(RefusedError, match="--force"):
        rt.nodes.resume("kwok-gpu-004", actor=OPERATOR)
    with pytest.raises(RefusedError, match="someone else"):
        rt.nodes.drain("kwok-gpu-004", "mine now", actor=OPERATOR)
    assert not rt.sweep().errors
    assert node_marks(api, "kwok-gpu-004") == (True, {}, {})
    kinds = [e.kind for e in rt.store.events(node="kwok-gpu-004", limit=20)]
    assert kinds.count(EventKind.EXTERNAL_DRAIN) == 1

    # Should the backend drain it anyway, its resume leaves the admin's cordon in place.
    wm = backend(rt)
    wm.drain("kwok-gpu-004", "computectl: xid: 48")
    assert node_marks(api, "kwok-gpu-004") == (
        True,
        {TAINT: "xid:NoSchedule"},
        {REASON: "computectl: xid: 48", WAS_CORDONED: "true"},
    )
    wm.drain("kwok-gpu-004", "computectl: xid: 79")  # a second drain keeps what it learnt
    assert node_marks(api, "kwok-gpu-004")[2][WAS_CORDONED] == "true"
    wm.resume("kwok-gpu-004")
    wm.resume("kwok-gpu-004")
    assert node_marks(api, "kwok-gpu-004") == (True, {}, {})
    assert wm.node("kwok-gpu-004").reason == "cordoned outside computectl"


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
