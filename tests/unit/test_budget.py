"""GPU-hour budgets of Kubernetes tenants over the in-memory API server: one event per
threshold crossed, recorded once however many replicas look; at 100 % the stop (a
ResourceQuota of 0 GPUs of its own) in the tenant's namespace only; raised, reset or
removed, the stop goes and only it; the metric says where each tenant stands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from compute.errors import NotFoundError
from compute.metrics.budgets import budgets as budget_families
from compute.services import budget
from compute.services import usage_samples as samples
from compute.store import Store
from compute.tenants.spec import spec_to_json
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.kubernetes.usage import KubernetesUsage
from scheduler.kubernetes.usage_budget import BUDGET_QUOTA
from scheduler.tenants import GpuQuota, TenantSpec

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def kube() -> InMemoryKube:
    k = InMemoryKube()
    k.add_node("kwok-gpu-001", {"computectl.io/pool": "training"})
    return k


def tenant(store: Store, kube: InMemoryKube, name: str, budget_hours: float | None) -> None:
    spec = TenantSpec(
        name, quotas=(GpuQuota("training", "H100-SXM", 8),), gpu_hours_budget=budget_hours
    )
    with store.transaction() as tx:
        tx.put_tenant(name, spec_to_json(spec), "active", T0)
    kube.apply_object(_ns(name))
    kube.apply_object(to.quota(spec, "nvidia.com/gpu"))


def _ns(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": to.namespace_of(name), "labels": to.marker(name)},
    }


def run(kube: InMemoryKube, name: str, gpus: int) -> None:
    kube.pods[(to.namespace_of(name), "p")] = {
        "metadata": {"name": "p", "namespace": to.namespace_of(name), "uid": f"uid-{name}"},
        "spec": {
            "nodeName": "kwok-gpu-001",
            "containers": [{"name": "m", "resources": {"requests": {"nvidia.com/gpu": gpus}}}],
        },
        "status": {"phase": "Running", "startTime": T0.isoformat()},
    }


def sources(kube: InMemoryKube) -> list[tuple[samples.SampledUsage, set[str]]]:
    pools = {"training": {"computectl.io/pool": "training"}}
    return [(KubernetesUsage(kube, pools), {"training"})]


def step(store: Store, kube: InMemoryKube, now: datetime) -> budget.Enforced:
    srcs = sources(kube)
    assert not samples.sample(store, srcs, now).errors
    return budget.enforce(store, srcs, now)


def kinds(store: Store) -> list[tuple[str, str]]:
    found = store.events(kinds=[budget.BUDGET_80, budget.BUDGET_100, budget.BUDGET_LIFTED])
    return sorted((e.detail["tenant"], e.kind) for e in found)


def stopped(kube: InMemoryKube, name: str) -> bool:
    return kube.get_object("ResourceQuota", BUDGET_QUOTA, to.namespace_of(name)) is not None


class _Families(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        yield from budget_families(self.store)


def scrape(store: Store) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(store))
    return generate_latest(registry).decode()


def test_thresholds_once_the_stop_at_100_and_only_for_that_tenant(
    store: Store, kube: InMemoryKube
) -> None:
    tenant(store, kube, "a", 10.0)  # 10 GPU-hours; 2 GPUs → 80 % at 4 h, 100 % at 5 h
    tenant(store, kube, "b", None)
    run(kube, "a", 2)
    run(kube, "b", 8)
    step(store, kube, T0 + H)
    assert kinds(store) == [] and 'computectl_tenant_budget_used_ratio{tenant="a"} 0.2' in scrape(
        store
    )
    step(store, kube, T0 + 4 * H)
    step(store, kube, T0 + 4.5 * H)  # still 80-something: nothing new
    assert kinds(store) == [("a", budget.BUDGET_80)] and not stopped(kube, "a")
    assert 'computectl_tenant_budget_used_ratio{tenant="a"} 0.9' in scrape(store)
    done = step(store, kube, T0 + 5 * H)
    assert done.stopped == ["a"] and not done.errors
    assert kinds(store) == [("a", budget.BUDGET_100), ("a", budget.BUDGET_80)]
    assert stopped(kube, "a") and not stopped(kube, "b")
    body = scrape(store)
    assert 'computectl_tenant_budget_used_ratio{tenant="a"} 1.0' in body
    assert 'computectl_tenant_budget_stopped{tenant="a"} 1.0' in body
    assert 'tenant="b"' not in body  # no budget, no figure
    # The running pod goes on; later sweeps record nothing more.
    step(store, kube, T0 + 6 * H)
    assert len(kinds(store)) == 2
    assert [a.action for a in store.audit(limit=5)][:1] == ["tenant.budget_stop"]


def test_a_jump_past_both_thresholds_records_both_and_replicas_record_once(
    tmp_path: Path, kube: InMemoryKube
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = Store.open(url), Store.open(url)
    try:
        tenant(a, kube, "a", 1.0)
        run(kube, "a", 8)
        for replica in (a, b, a):
            step(replica, kube, T0 + H)
        assert kinds(a) == [("a", budget.BUDGET_100), ("a", budget.BUDGET_80)]
        assert stopped(kube, "a")
    finally:
        a.close()
        b.close()


def test_raised_reset_or_removed_the_stop_goes_and_only_it(
    store: Store, kube: InMemoryKube
) -> None:
    tenant(store, kube, "a", 1.0)
    run(kube, "a", 1)
    step(store, kube, T0 + H)
    assert stopped(kube, "a")
    own = kube.get_object("ResourceQuota", to.QUOTA, "tenant-a")
    assert own is not None
    # Raised: 1 GPU-hour used of 4.
    tenant(store, kube, "a", 4.0)
    done = step(store, kube, T0 + H)
    assert done.lifted == ["a"] and not stopped(kube, "a")
    after = kube.get_object("ResourceQuota", to.QUOTA, "tenant-a")
    assert after is not None and after["spec"] == own["spec"]
    assert ("a", budget.BUDGET_LIFTED) in kinds(store)
    # Spent again at 4 h; an operator resets it: counted from now, the stop goes.
    step(store, kube, T0 + 4 * H)
    assert stopped(kube, "a")
    budget.reset(store, "a", "operator:olga", T0 + 4 * H)
    step(store, kube, T0 + 4 * H)
    assert not stopped(kube, "a")
    step(store, kube, T0 + 5 * H)  # one more hour of 4: 25 %
    assert not stopped(kube, "a")
    assert "tenant.budget_reset" in [x.action for x in store.audit(limit=10)]
    with pytest.raises(NotFoundError):
        budget.reset(store, "nobody", "operator:olga", T0)


def test_a_cluster_that_refuses_the_stop_is_tried_again(store: Store, kube: InMemoryKube) -> None:
    tenant(store, kube, "a", 1.0)
    run(kube, "a", 8)
    srcs = sources(kube)
    samples.sample(store, srcs, T0 + H)
    with kube.down():
        done = budget.enforce(store, srcs, T0 + H)
    assert done.errors and "cannot hold back new GPU pods" in done.errors[0]
    assert not stopped(kube, "a")
    done = budget.enforce(store, srcs, T0 + H)
    assert done.stopped == ["a"] and stopped(kube, "a")
    # The events were recorded once, at the crossing.
    assert kinds(store) == [("a", budget.BUDGET_100), ("a", budget.BUDGET_80)]


@pytest.mark.parametrize(
    ("used_hours", "budget_hours", "level"),
    [(0, 1, 0), (0.79, 1, 0), (0.8, 1, 80), (0.99, 1, 80), (1, 1, 100), (5, 1, 100), (5, None, 0)],
)
def test_levels(used_hours: float, budget_hours: float | None, level: int) -> None:
    assert budget.level_of(round(used_hours * 3_600_000_000), budget_hours) == level
