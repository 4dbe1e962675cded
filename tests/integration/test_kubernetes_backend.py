"""The Kubernetes backend against a real API server (testenv/kubernetes), through the Runtime.

Nothing is mocked: computectl talks to kube-apiserver with the official
client; kwok plays the GPU nodes (their pods become Running at once). The
tests look at the cluster with the same client, as kubectl would.
"""

from __future__ import annotations

from typing import Any

import pytest

from compute.domain import EventKind
from compute.errors import RefusedError
from compute.runtime import Runtime
from health.policy import DrainOwner, Lifecycle
from scheduler.errors import NotFound
from scheduler.protocol import DrainReport
from tests.integration import kube_backend_support as kb
from tests.integration.conftest import KUBE_NODES, KubeCluster
from tests.integration.kube_backend_support import (
    OPERATOR,
    REASON,
    TAINT,
    WAS_CORDONED,
    backend,
    gpu_deployment,
    node_marks,
    protected_server,
    running_pods,
    stored,
)

pytestmark = pytest.mark.integration

# The shared fixtures, by their names here.
rt, ns = kb.rt, kb.ns


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
    _, pod = protected_server(kube, api, ns, "kwok-gpu-002")
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
