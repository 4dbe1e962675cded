"""Kubernetes drains against PodDisruptionBudgets on a real API server: a blocked eviction
is retried, by a drain again or by the sweep, once the budget's owner lets the pod go."""

from __future__ import annotations

from typing import Any

import pytest

from compute.runtime import Runtime
from health.policy import Lifecycle
from scheduler.protocol import DrainReport
from tests.integration import kube_backend_support as kb
from tests.integration.conftest import KubeCluster
from tests.integration.kube_backend_support import (
    OPERATOR,
    backend,
    node_marks,
    pods_on,
    protected_server,
    relax,
    running_pods,
    stored,
)

pytestmark = pytest.mark.integration

# The shared fixtures, by their names here.
rt, ns = kb.rt, kb.ns


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
