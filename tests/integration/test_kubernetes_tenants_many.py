"""Many Kubernetes tenants at once (`KubernetesTenants.plan_many`/`apply_many`) on the real
test API server with Kueue: one read of the cluster (lists from the watch cache), then each
tenant's steps. The answers are those of one tenant at a time: creates, an unchanged
re-apply that changes nothing, drift made by hand found and repaired, and a namespace
made outside computectl refused for its tenant alone, the others applied; and a flavor
goes with the last tenant whose queue names it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from scheduler.kubernetes import KubeClient, KubernetesTenants
from scheduler.kubernetes.tenant_queues import KUEUE_API, cluster_queue_name
from scheduler.tenants import ChangeKind, GpuQuota, TenantSpec
from tests.integration.conftest import KubeCluster
from tests.integration.conftest_kueue import Kueue, kueue

pytestmark = pytest.mark.integration
__all__ = ["kueue"]  # the fixture, imported for pytest

POOLS = {p: {"computectl.io/pool": p} for p in ("training", "inference")}


@pytest.fixture
def tenants(kube: KubeCluster, kueue: Kueue) -> Iterator[KubernetesTenants]:
    kc = KubeClient(kube.kubeconfig, timeout_seconds=60)
    yield KubernetesTenants(kc, POOLS, queues=True)
    kc.close()


def specs(n: int) -> list[TenantSpec]:
    run = uuid.uuid4().hex[:5]
    quotas = (GpuQuota("training", "H100-SXM", 8), GpuQuota("inference", "H100-SXM", 8))
    return [TenantSpec(f"km{run}{i}", ("alice",), quotas) for i in range(n)]


@pytest.fixture
def made(tenants: KubernetesTenants) -> Iterator[list[TenantSpec]]:
    many = specs(3)
    yield many  # the tenants to delete afterwards
    for spec in many:
        tenants.delete(spec.name, force=True, grace_seconds=0, purge_data=True)


def test_many_tenants_answer_as_one_at_a_time(
    tenants: KubernetesTenants, made: list[TenantSpec], kube: KubeCluster
) -> None:
    planned = tenants.plan_many(made)
    assert [o.name for o in planned] == [s.name for s in made]
    assert [o.changes for o in planned] == [tenants.plan(s) for s in made]
    assert all(not o.error for o in planned)

    created = tenants.apply_many(made)
    assert all(o.error is None for o in created), created
    # The shared objects (guards, flavors) are reported once, by the first tenant.
    assert all(c.kind is ChangeKind.CREATE for o in created for c in o.changes)
    assert not any(tenants.plan(s) for s in made)
    assert not any(o.changes or o.error for o in tenants.apply_many(made))

    # Drift by hand: one tenant's quota in a pool, another's users; found and repaired.
    core = kube.core()
    try:
        custom = client.CustomObjectsApi(core.api_client)
        group, version = KUEUE_API.split("/")
        name = cluster_queue_name(made[0].name)
        cq: Any = custom.get_cluster_custom_object(group, version, "clusterqueues", name)
        cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] = "64"
        custom.replace_cluster_custom_object(group, version, "clusterqueues", name, cq)
        rbac = client.RbacAuthorizationV1Api(core.api_client)
        ns = f"tenant-{made[1].name}"
        rb: Any = rbac.read_namespaced_role_binding("computectl-tenant", ns)
        rb.subjects.append(client.RbacV1Subject(kind="User", name="mallory"))
        rbac.replace_namespaced_role_binding("computectl-tenant", ns, rb)
    finally:
        core.api_client.close()
    drift = {o.name: [c.target for c in o.changes] for o in tenants.plan_many(made)}
    assert drift == {
        made[0].name: [f"clusterqueue {cluster_queue_name(made[0].name)}"],
        made[1].name: [f"rolebinding tenant-{made[1].name}/computectl-tenant"],
        made[2].name: [],
    }
    repaired = tenants.apply_many(made)
    assert [len(o.changes) for o in repaired] == [1, 1, 0]
    assert not any(o.changes for o in tenants.plan_many(made))


def test_a_foreign_namespace_holds_back_its_tenant_only(
    tenants: KubernetesTenants, made: list[TenantSpec], kube: KubeCluster
) -> None:
    core = kube.core()
    foreign = f"tenant-{made[1].name}"
    try:
        core.create_namespace({"metadata": {"name": foreign}})
        done = tenants.apply_many(made)
        assert [o.error is None for o in done] == [True, False, True]
        assert "made outside computectl" in str(done[1].error) and not done[1].changes
        assert core.read_namespace(foreign).metadata.labels.get("computectl.io/tenant") is None
        assert not any(tenants.plan(s) for s in (made[0], made[2]))
    finally:
        core.delete_namespace(foreign)
        core.api_client.close()
        made.pop(1)  # not computectl's to delete


def flavor(custom: Any, name: str) -> dict[str, Any] | None:
    group, version = KUEUE_API.split("/")
    try:
        found: dict[str, Any] = custom.get_cluster_custom_object(
            group, version, "resourceflavors", name
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def gone(custom: Any, name: str) -> bool:
    """Deleted, or on its way (Kueue's finalizer holds it while a queue names it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = flavor(custom, name)
        if found is None or found["metadata"].get("deletionTimestamp"):
            return True
        time.sleep(0.5)
    return False


def test_the_last_tenant_of_a_flavor_takes_it_along(
    tenants: KubernetesTenants, kube: KubeCluster
) -> None:
    run = uuid.uuid4().hex[:5]
    model = f"T{run}"  # flavors of this test's own: training-t<run>, inference-t<run>
    a = TenantSpec(f"kf{run}a", (), (GpuQuota("training", model, 8),))
    b = TenantSpec(
        f"kf{run}b", (), (GpuQuota("training", model, 8), GpuQuota("inference", model, 8))
    )
    core = kube.core()
    custom = client.CustomObjectsApi(core.api_client)
    group, version = KUEUE_API.split("/")
    foreign = {"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": {"name": f"x{run}"}}
    custom.create_cluster_custom_object(group, version, "resourceflavors", foreign)
    try:
        assert not any(o.error for o in tenants.apply_many([a, b]))
        training, inference = f"training-t{run}", f"inference-t{run}"
        assert flavor(custom, training) and flavor(custom, inference)
        planned = [c.target for c in tenants.plan_delete(b.name)]
        assert f"resourceflavor {inference}" in planned
        assert f"resourceflavor {training}" not in planned
        tenants.delete(b.name, force=True, grace_seconds=0, purge_data=True)
        assert gone(custom, inference) and flavor(custom, training)
        tenants.delete(a.name, force=True, grace_seconds=0, purge_data=True)
        assert gone(custom, training)
        # Not computectl's: left alone, though no queue names it.
        assert flavor(custom, f"x{run}") is not None
    finally:
        custom.delete_cluster_custom_object(group, version, "resourceflavors", f"x{run}")
        core.api_client.close()
