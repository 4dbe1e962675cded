"""Many nodes at once on the real API server (testenv/kubernetes): node by node inside the
backend, one node failing stops none of the others, and the control plane records each."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.runtime import Runtime
from health.policy import Lifecycle
from scheduler.errors import NotFound
from tests.integration import kube_backend_support as kb
from tests.integration.conftest import KUBE_TEST_LABEL, KubeCluster
from tests.integration.kube_backend_support import backend, protected_server

pytestmark = pytest.mark.integration

OPERATOR = "operator:alice"
NAMES = ["kwok-gpu-001", "kwok-gpu-002", "kwok-gpu-003"]


# The Kubernetes backend's shared fixture, by its name here.
rt = kb.rt


def test_a_hostlist_is_drained_and_resumed_node_by_node(rt: Runtime) -> None:
    wm = backend(rt)
    batch = rt.nodes.drain_many(["kwok-gpu-[001-003]", "kwok-gpu-999"], "swap", actor=OPERATOR)
    assert [n.name for n in batch.done] == NAMES and list(batch.refused) == ["kwok-gpu-999"]
    assert all(wm.node(n).drain for n in NAMES)
    assert {n.state for n in batch.done} == {Lifecycle.DRAINED}
    batch = rt.nodes.resume_many(NAMES, actor=OPERATOR, skip_burn_in=True)
    assert {n.state for n in batch.done} == {Lifecycle.IN_SERVICE} and not batch.refused
    assert not any(wm.node(n).drain for n in NAMES)


def test_a_node_the_api_server_does_not_know_fails_alone(rt: Runtime) -> None:
    wm = backend(rt)
    result = wm.drain_many(["kwok-gpu-004", "kwok-gpu-999"], "computectl: test")
    assert list(result.failed) == ["kwok-gpu-999"]
    assert isinstance(result.failed["kwok-gpu-999"], NotFound)
    assert wm.node("kwok-gpu-004").drain
    assert not wm.resume_many(["kwok-gpu-004"]).failed
    with pytest.raises(NotFound):
        wm.drain_many(["kwok-gpu-998", "kwok-gpu-999"], "computectl: test")


def test_work_a_budget_protects_is_named_per_node(rt: Runtime, kube: KubeCluster, api: Any) -> None:
    ns = f"kt-{uuid.uuid4().hex[:8]}"
    labels = {KUBE_TEST_LABEL: "true", "computectl.io/tenant": "acme"}
    api.create_namespace({"metadata": {"name": ns, "labels": labels}})
    _, pod = protected_server(kube, api, ns, "kwok-gpu-005")
    rt.sweep()
    with TestClient(create_app(rt), headers=operator_headers(rt.store)) as client:
        r = client.post(
            "/api/v1/nodes/drain", json={"nodes": ["kwok-gpu-[005-006]"], "reason": "x"}
        )
    assert r.status_code == 200, r.text
    five, six = r.json()["nodes"]
    assert (five["state"], six["state"]) == ("draining", "drained")
    [blocked] = five["left_running"]
    assert blocked.startswith(f"{ns}/{pod}: ") and "disruption budget" in blocked
    assert six["left_running"] == []
    assert rt.nodes.left_running("kwok-gpu-005") == (blocked,)
