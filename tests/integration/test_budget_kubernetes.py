"""GPU-hour budgets on the real Kubernetes test cluster (kwok pods with GPU requests): the
GPU time the control plane counts survives the pod's deletion; at 80 % of the budget one
event and the metric; at 100 % the API server's quota admission refuses the tenant's new GPU
pod while another tenant's is admitted, and a larger budget takes the stop back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from compute.metrics.budgets import budgets as budget_families
from compute.runtime import Runtime
from compute.services import budget
from compute.services.usage import tenant_usage
from compute.store import Store
from compute.store import usage as kept
from compute.tenants.spec import parse_tenant
from scheduler.kubernetes.usage_budget import BUDGET_QUOTA
from tests.integration.conftest import KubeCluster, runtime_over

pytestmark = pytest.mark.integration

# The smallest budget a spec takes: one GPU-minute. Two GPUs spend 80 % of it in 24 s.
ONE_GPU_MINUTE = 1 / 60


@pytest.fixture
def made() -> list[str]:
    """The tenants a test made, deleted from the cluster afterwards."""
    return []


@pytest.fixture
def rt(kube: KubeCluster, api: Any, tmp_path: Path, made: list[str]) -> Iterator[Runtime]:
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    for name in made:
        ns = f"tenant-{name}"
        try:
            api.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
            api.delete_namespace(ns, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


def tenant(rt: Runtime, made: list[str], budget_hours: float | None, gpus: int = 8) -> str:
    name = f"bu{uuid.uuid4().hex[:6]}"
    made.append(name)
    spec: dict[str, Any] = {"name": name, "quotas": [{"pool": "training", "gpus": gpus}]}
    if budget_hours is not None:
        spec["gpu_hours_budget"] = budget_hours
    rt.tenants.apply(parse_tenant(spec, rt.settings.effective_pools), actor="operator:test")
    return name


def gpu_pod(name: str, gpus: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"computectl.io/pool": "training"},
            "containers": [
                {
                    "name": "m",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def start(kube: KubeCluster, api: Any, tenant_name: str, pod: str, gpus: int) -> None:
    ns = f"tenant-{tenant_name}"
    api.create_namespaced_pod(ns, gpu_pod(pod, gpus))
    kube.wait(
        f"{ns}/{pod} to run",
        lambda: api.read_namespaced_pod(pod, ns).status.phase == "Running",
        60,
    )


def used_us(store: Store, name: str) -> int:
    row = kept.budgets(store).get(name)
    return 0 if row is None else row.gpu_us


class _Budgets(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        yield from budget_families(self.store)


def ratio(store: Store, name: str) -> float:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Budgets(store))
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(f'computectl_tenant_budget_used_ratio{{tenant="{name}"}} '):
            return float(line.split()[-1])
    raise AssertionError(f"no ratio for {name}")


def events(store: Store, name: str) -> list[str]:
    kinds = [budget.BUDGET_80, budget.BUDGET_100, budget.BUDGET_LIFTED]
    return sorted(e.kind for e in store.events(kinds=kinds) if e.detail.get("tenant") == name)


def test_counted_gpu_time_survives_the_pods_deletion(
    rt: Runtime, made: list[str], kube: KubeCluster, api: Any
) -> None:
    name = tenant(rt, made, budget_hours=100.0)
    start(kube, api, name, "train", 4)
    time.sleep(2)
    assert budget.track(rt) == []
    counted = used_us(rt.store, name)
    assert counted >= 4 * 2 * 1_000_000
    ns = f"tenant-{name}"
    api.delete_namespaced_pod("train", ns, grace_period_seconds=0)
    kube.wait("the pod to go", lambda: not api.list_namespaced_pod(ns).items, 60)
    assert budget.track(rt) == []
    assert used_us(rt.store, name) == counted
    # The tenant's usage report still has it, though Kubernetes has forgotten the pod.
    report = tenant_usage(rt, name, days=1)
    hours = sum(r.gpu_hours for r in report.rows if r.source == "kubernetes")
    assert hours == pytest.approx(counted / 3.6e9)
    # Counted again by a second control plane on the same store: nothing twice.
    other = Runtime.build(rt.settings)
    try:
        assert budget.track(other) == []
    finally:
        other.close()
    assert used_us(rt.store, name) == counted


def test_a_spent_budget_refuses_new_gpu_pods_of_that_tenant_only(
    rt: Runtime, made: list[str], kube: KubeCluster, api: Any
) -> None:
    spender, other = tenant(rt, made, ONE_GPU_MINUTE), tenant(rt, made, None)
    start(kube, api, spender, "train", 2)

    def level() -> int:
        assert budget.track(rt) == []
        return budget.level_of(used_us(rt.store, spender), ONE_GPU_MINUTE)

    kube.wait("80 % of the budget", lambda: level() >= budget.WARN, 90)
    assert ratio(rt.store, spender) >= 0.8
    if level() < budget.SPENT:  # seen between the two thresholds (2 GPUs: a 6 s window)
        assert ratio(rt.store, spender) < 1
        assert not api.list_namespaced_resource_quota(
            f"tenant-{spender}", field_selector=f"metadata.name={BUDGET_QUOTA}"
        ).items
    assert budget.BUDGET_80 in events(rt.store, spender)

    kube.wait("the budget to be spent", lambda: level() == budget.SPENT, 90)
    assert events(rt.store, spender) == [budget.BUDGET_100, budget.BUDGET_80]
    assert ratio(rt.store, spender) >= 1
    ns = f"tenant-{spender}"
    stop = api.read_namespaced_resource_quota(BUDGET_QUOTA, ns)
    assert stop.spec.hard == {"requests.nvidia.com/gpu": "0"}
    # The API server refuses the spender's new GPU pod; the other tenant's is admitted.
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_pod(ns, gpu_pod("more", 1))
    assert refused.value.status == 403 and "quota" in str(refused.value.body)
    start(kube, api, other, "train", 1)
    # Its running pod goes on; more sweeps record nothing more.
    assert api.read_namespaced_pod("train", ns).status.phase == "Running"
    assert budget.track(rt) == []
    assert events(rt.store, spender) == [budget.BUDGET_100, budget.BUDGET_80]

    # A larger budget: the stop goes (and only it), new GPU pods start again.
    spec = parse_tenant(
        {
            "name": spender,
            "quotas": [{"pool": "training", "gpus": 8}],
            "gpu_hours_budget": 10.0,
        },
        rt.settings.effective_pools,
    )
    rt.tenants.apply(spec, actor="operator:test")
    assert budget.track(rt) == []
    assert BUDGET_QUOTA not in [
        q.metadata.name for q in api.list_namespaced_resource_quota(ns).items
    ]
    assert budget.BUDGET_LIFTED in events(rt.store, spender)
    start(kube, api, spender, "more", 1)
