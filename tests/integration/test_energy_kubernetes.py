"""Energy and GPU-hours of a tenant on the real Kubernetes test cluster (kwok GPU nodes):
its pod's GPUs take their share of the node's measured power between two sweeps, the rest
of the node is idle, and `tenants usage` bills the GPU-hours its real pod held (counted
each sweep, kept after the pod is gone) beside that energy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from compute.runtime import Runtime
from compute.services import billing
from compute.store import energy as kept
from compute.tenants.spec import parse_tenant
from tests.integration.conftest import KubeCluster, runtime_over

pytestmark = pytest.mark.integration
WATTS = 4000.0


@pytest.fixture
def rt(kube: KubeCluster, api: Any, tmp_path: Path) -> Iterator[tuple[Runtime, str]]:
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    name = f"en{uuid.uuid4().hex[:6]}"
    spec = {"name": name, "quotas": [{"pool": "training", "gpus": 8}]}
    runtime.tenants.apply(parse_tenant(spec, runtime.settings.effective_pools), actor="op:test")
    yield runtime, name
    runtime.close()
    try:
        api.delete_collection_namespaced_pod(f"tenant-{name}", grace_period_seconds=0)
        api.delete_namespace(f"tenant-{name}", propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def gpu_pod(gpus: int) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)}
    return {
        "metadata": {"name": "train"},
        "spec": {
            "nodeSelector": {"computectl.io/pool": "training"},
            "containers": [
                {
                    "name": "m",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": limits},
                }
            ],
        },
    }


def measured(rt: Runtime, node: str, watts: float) -> None:
    """The node's own power reading, stored as a posted report stores it."""
    with rt.store.transaction() as tx:
        [n] = tx.nodes([node])
        tx.put_node(n.evolve(power_watts=watts))


def test_a_pods_gpus_take_their_share_of_the_nodes_energy_and_are_billed(
    rt: tuple[Runtime, str], kube: KubeCluster, api: Any
) -> None:
    runtime, name = rt
    ns = f"tenant-{name}"
    api.create_namespaced_pod(ns, gpu_pod(4))
    kube.wait(
        "the pod to run", lambda: api.read_namespaced_pod("train", ns).status.phase == "Running", 60
    )
    node = api.read_namespaced_pod("train", ns).spec.node_name
    gpu_count = next(n.gpu_count for n in runtime.store.nodes() if n.name == node)
    assert runtime.sweep().errors == []  # allocations read from the API server; energy starts
    measured(runtime, node, WATTS)
    start = kept.mark(runtime.store)
    time.sleep(2)
    assert runtime.sweep().errors == []
    end = kept.mark(runtime.store)
    assert start is not None and end is not None and end > start
    rows = kept.hours(runtime.store, start, end)
    mine = sum(r.it_mj for r in rows if r.holder == kept.TENANT and r.tenant == name)
    idle = sum(r.it_mj for r in rows if r.holder == kept.IDLE and r.pool == "training")
    whole = WATTS * (end - start).total_seconds() * 1000
    # Its 4 GPUs' share of the node, the node's other GPUs idle (other nodes measured 0 W).
    assert mine == pytest.approx(whole * 4 / gpu_count, abs=2)
    assert mine + idle == pytest.approx(whole, abs=2)

    # The pod goes; its GPU time, counted each sweep from the real pod, stays billed.
    api.delete_namespaced_pod("train", ns, grace_period_seconds=0)
    kube.wait("the pod to go", lambda: not api.list_namespaced_pod(ns).items, 60)
    assert runtime.sweep().errors == []
    now = runtime.clock.now()
    since, until = billing.span(now, 1, None, None)
    bill, used = billing.tenant_billing(runtime, name, since, until)
    [row] = bill.rows
    assert row.sources == "kubernetes" and row.pool == "training"
    assert row.gpu_hours >= 4 * 2 / 3600
    assert row.energy_kwh * 3.6e9 == pytest.approx(mine, abs=1)
    assert [r.source for r in used.rows] == ["kubernetes"]
