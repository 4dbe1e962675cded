"""Kueue objects of a tenant (pure builders) and many tenants at once over the in-memory
driver (the real API server and Kueue are in tests/integration/test_kubernetes_tenant_queues.py)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import Conflict
from scheduler.kubernetes import KubernetesTenants
from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes import tenant_queues as tq
from scheduler.kubernetes.objects import TENANT_LABEL
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.tenants import ChangeKind, GpuQuota, TenantSpec

POOLS = {"training": "training", "inference": "inference"}
SELECTORS = {p: {"computectl.io/pool": p} for p in POOLS}
SPLIT = (GpuQuota("training", "H100-SXM", 8), GpuQuota("inference", "H100-SXM", 8))


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def gpu_limits(cq: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f["name"]: f["resources"][0] for g in cq["spec"]["resourceGroups"] for f in g["flavors"]
    }


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_a_flavor_name_is_always_a_dns_label(pool: str, model: str) -> None:
    name = tq.flavor_name(pool, model)
    assert len(name) <= 63
    assert name == "" or re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name)


def test_a_customer_gets_a_quota_per_pool_it_cannot_exceed_and_reclaims_what_it_lent() -> None:
    objs = to.desired(TenantSpec("acme", ("alice",), SPLIT), POOLS, "nvidia.com/gpu", True)
    flavors = of_kind(objs, "ResourceFlavor")
    assert [f["metadata"]["name"] for f in flavors] == ["inference-h100-sxm", "training-h100-sxm"]
    assert flavors[1]["spec"]["nodeLabels"] == {"computectl.io/pool": "training"}
    assert TENANT_LABEL not in flavors[0]["metadata"]["labels"]  # shared
    (cq,) = of_kind(objs, "ClusterQueue")
    assert gpu_limits(cq) == {
        "inference-h100-sxm": {
            "name": "nvidia.com/gpu",
            "nominalQuota": "8",
            "borrowingLimit": "0",
        },
        "training-h100-sxm": {"name": "nvidia.com/gpu", "nominalQuota": "8", "borrowingLimit": "0"},
    }
    assert cq["spec"]["cohortName"] == tq.COHORT
    assert cq["spec"]["preemption"]["reclaimWithinCohort"] == "Any"
    assert cq["spec"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "tenant-acme"
    }
    (lq,) = of_kind(objs, "LocalQueue")
    assert (lq["metadata"]["name"], lq["spec"]["clusterQueue"]) == ("default", "tenant-acme")
    (ns,) = of_kind(objs, "Namespace")
    assert ns["metadata"]["labels"][tq.QUEUE_LABEL] == tq.QUEUE_VALUE
    # No summed GPU quota: pods waiting at Kueue's gate would count against it.
    (quota,) = of_kind(objs, "ResourceQuota")
    assert quota["spec"] == {}
    suspended = TenantSpec("acme", ("alice",), SPLIT, suspended=True)
    (quota,) = of_kind(to.desired(suspended, POOLS, "nvidia.com/gpu", True), "ResourceQuota")
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "0", "pods": "0"}
    # Queues come after the namespace and before access.
    kinds = [o["kind"] for o in objs]
    assert kinds.index("Namespace") < kinds.index("ClusterQueue") < kinds.index("ServiceAccount")


def test_the_internal_tenant_may_borrow_and_reclaims_nothing() -> None:
    spec = TenantSpec("ops", (), (GpuQuota("training", "H100-SXM", 0),), internal=True)
    objs = to.desired(spec, POOLS, "nvidia.com/gpu", True)
    (cq,) = of_kind(objs, "ClusterQueue")
    assert gpu_limits(cq) == {"training-h100-sxm": {"name": "nvidia.com/gpu", "nominalQuota": "0"}}
    assert cq["spec"]["preemption"]["reclaimWithinCohort"] == "Never"
    (quota,) = of_kind(objs, "ResourceQuota")
    assert quota["spec"] == {}
    suspended = TenantSpec("ops", (), spec.quotas, suspended=True, internal=True)
    (cq,) = of_kind(to.desired(suspended, POOLS, "nvidia.com/gpu", True), "ClusterQueue")
    assert cq["spec"]["stopPolicy"] == "Hold"


def test_without_queues_nothing_of_kueue_is_made() -> None:
    objs = to.desired(TenantSpec("acme", ("alice",), SPLIT), POOLS, "nvidia.com/gpu")
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"ResourceFlavor", "ClusterQueue", "LocalQueue"}
    assert all(tq.QUEUE_RULE not in o.get("rules", []) for o in objs)


def test_delete_takes_the_tenants_cluster_queue_but_never_a_shared_flavor() -> None:
    objs = to.desired(TenantSpec("acme", ("alice",), SPLIT), POOLS, "nvidia.com/gpu", True)
    live = {td.key(o): o for o in objs}
    kinds = [s.kind for s in td.delete_steps("acme", live, [], purge_data=True)]
    assert "ClusterQueue" in kinds and "LocalQueue" in kinds
    assert "ResourceFlavor" not in kinds and "ValidatingAdmissionPolicy" not in kinds


def test_many_tenants_at_once_match_one_at_a_time_and_a_second_apply_changes_nothing() -> None:
    kube = InMemoryKube()
    tenants = KubernetesTenants(kube, SELECTORS, queues=True)
    specs = [TenantSpec(f"t{i}", ("alice",), SPLIT) for i in range(5)]
    planned = tenants.plan_many(specs)
    assert [[c.target for c in o.changes] for o in planned] == [
        [c.target for c in tenants.plan(s)] for s in specs
    ]
    made = tenants.apply_many(specs, workers=3)
    assert all(o.error is None for o in made)
    # The shared objects are made (and reported) once, by the first tenant.
    guard = f"validatingadmissionpolicy {to.GUARD}"
    assert [guard in [c.target for c in o.changes] for o in made] == [True] + [False] * 4
    assert all(tenants.plan(s) == [] for s in specs)
    assert all(o.changes == [] for o in tenants.plan_many(specs))
    assert all(o.changes == [] for o in tenants.apply_many(specs))


def test_one_tenants_conflict_is_its_own_outcome() -> None:
    kube = InMemoryKube()
    kube.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-b"}})
    tenants = KubernetesTenants(kube, SELECTORS, queues=True)
    out = tenants.apply_many([TenantSpec(n, (), SPLIT) for n in ("a", "b", "c")])
    assert [type(o.error) for o in out] == [type(None), Conflict, type(None)]
    assert {c.kind for c in out[2].changes} == {ChangeKind.CREATE}
    assert tenants.managed() == ["a", "c"]
