"""Kueue's ResourceFlavors over the in-memory driver: the last tenant naming a flavor takes
it along on delete (computectl's only), and an apply while a flavor it needs is still being
deleted is refused in one line, alone and in a batch, rather than naming a flavor that goes.
(The real API server with Kueue: tests/integration/test_kubernetes_tenants_many.py.)"""

from __future__ import annotations

import pytest

from scheduler.errors import SchedulerError
from scheduler.kubernetes import KubernetesTenants
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.tenants import GpuQuota, TenantSpec

POOLS = {p: {"computectl.io/pool": p} for p in ("training", "inference")}


def spec(name: str, *pools: str) -> TenantSpec:
    return TenantSpec(name, (), tuple(GpuQuota(p, "H100", 8) for p in pools))


def flavors(kube: InMemoryKube) -> set[str]:
    return {n for k, _ns, n in kube.objects if k == "ResourceFlavor"}


def test_the_last_tenant_of_a_flavor_takes_it_along() -> None:
    kube = InMemoryKube()
    tenants = KubernetesTenants(kube, POOLS, queues=True, sleep=lambda _s: None)
    tenants.apply(spec("a-lab", "training"))
    tenants.apply(spec("b-lab", "training", "inference"))
    kube.apply_object({"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                       "metadata": {"name": "theirs"}})  # fmt: skip
    assert flavors(kube) == {"training-h100", "inference-h100", "theirs"}
    planned = [c.target for c in tenants.plan_delete("b-lab")]
    assert planned[-1] == "resourceflavor inference-h100"
    assert "resourceflavor training-h100" not in planned
    tenants.delete("b-lab")
    assert flavors(kube) == {"training-h100", "theirs"}
    tenants.delete("a-lab")
    assert flavors(kube) == {"theirs"}
    assert not any(c.target.startswith("resourceflavor") for c in tenants.plan_delete("c-lab"))


def test_an_apply_waits_for_a_flavor_on_its_way_out() -> None:
    kube = InMemoryKube()
    tenants = KubernetesTenants(kube, POOLS, queues=True, sleep=lambda _s: None)
    tenants.apply(spec("a-lab", "training"))
    flavor = kube.objects[("ResourceFlavor", "", "training-h100")]
    flavor["metadata"]["deletionTimestamp"] = "2026-12-02T22:00:00Z"
    with pytest.raises(SchedulerError, match="training-h100 still being deleted; apply again"):
        tenants.apply(spec("b-lab", "training"))
    out = tenants.apply_many([spec("b-lab", "training"), spec("c-lab", "inference")])
    assert "still being deleted" in str(out[0].error) and not out[0].changes
    assert out[1].error is None and out[1].changes
