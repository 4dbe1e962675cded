"""The tenant diff's pure parts: the order of the steps, what counts as drift, and the
body that repairs it (the real API server's side is in tests/integration)."""

from __future__ import annotations

import copy
from typing import Any

from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.tenants import ChangeKind, GpuQuota, TenantSpec

POOLS = {"training": "training", "inference": "inference"}
SPEC = TenantSpec("acme", users=("alice",), quotas=(GpuQuota("training", "H100-SXM", 16),))


def want() -> list[dict[str, Any]]:
    return to.desired(SPEC, POOLS, "nvidia.com/gpu")


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as an API server would hand it back: its defaults and bookkeeping added."""
    out = copy.deepcopy(obj)
    out["metadata"] |= {"resourceVersion": "7", "uid": "u", "managedFields": []}
    if obj["kind"] == "Namespace":
        out["metadata"]["labels"]["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        out["spec"] = {"finalizers": ["kubernetes"]}
    if obj["kind"] == "ValidatingAdmissionPolicy":
        mc = out["spec"]["matchConstraints"]
        mc |= {"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}}
        for rule in mc["resourceRules"]:
            rule["scope"] = "*"
    if obj["kind"] == "ValidatingAdmissionPolicyBinding":
        out["spec"]["matchResources"] |= {"matchPolicy": "Equivalent", "objectSelector": {}}
    return out


def live_of(objs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    return {td.key(o): stored(o) for o in objs}


def test_guards_come_before_access_and_delete_takes_access_first() -> None:
    kinds = [o["kind"] for o in want()]
    access = min(kinds.index(k) for k in ("ServiceAccount", "Role", "RoleBinding"))
    for guard in (
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Namespace",
        "ResourceQuota", "LimitRange", "NetworkPolicy",
    ):  # fmt: skip
        assert kinds.index(guard) < access, guard
    steps = td.delete_steps("acme", live_of(want()), [], purge_data=True)
    order = [s.kind for s in steps]
    assert order[:3] == ["RoleBinding", "Role", "ServiceAccount"]
    assert order.index("ResourceQuota") > order.index("RoleBinding")
    assert order[-1] == "Namespace"


def test_what_the_server_adds_is_no_drift() -> None:
    assert td.apply_steps(live_of(want()), want()) == []


def _drift(edit: Any) -> td.Step:
    live = live_of(want())
    edit(live)
    [step] = td.apply_steps(live, want())
    assert step.change.kind is ChangeKind.UPDATE and step.replace
    return step


def test_a_pool_label_another_hand_added_is_drift_and_the_repair_drops_it() -> None:
    ns_key = ("Namespace", "", "tenant-acme")

    def add(live: Any) -> None:
        live[ns_key]["metadata"]["labels"] |= {
            "pool.computectl.io/inference": "allowed",
            "team": "research",  # not computectl's: kept
        }
        live[ns_key]["metadata"]["annotations"] = {"note": "kept"}

    step = _drift(add)
    assert (step.change.before, step.change.after) == (
        "pools=inference,training tenant=acme",
        "pools=training tenant=acme",
    )
    assert step.obj is not None
    labels = step.obj["metadata"]["labels"]
    assert "pool.computectl.io/inference" not in labels
    assert labels["pool.computectl.io/training"] == "allowed"
    assert labels["team"] == "research"
    assert step.obj["metadata"]["annotations"] == {"note": "kept"}
    assert step.obj["metadata"]["resourceVersion"] == "7"  # replaces what was read


def test_quota_is_owned_whole() -> None:
    q = ("ResourceQuota", "tenant-acme", "computectl-gpu")

    def add_key(live: Any) -> None:
        live[q]["spec"]["hard"]["requests.cpu"] = "1"

    def change_value(live: Any) -> None:
        live[q]["spec"]["hard"]["requests.nvidia.com/gpu"] = "64"

    def narrow_scope(live: Any) -> None:
        live[q]["spec"]["scopes"] = ["BestEffort"]  # would exempt every GPU pod

    assert _drift(add_key).change.before == "requests.cpu=1 requests.nvidia.com/gpu=16"
    assert _drift(change_value).change.before == "requests.nvidia.com/gpu=64"
    step = _drift(narrow_scope)
    assert step.change.before == "requests.nvidia.com/gpu=16 (+scopes)"
    assert step.obj is not None and step.obj["spec"] == {"hard": {"requests.nvidia.com/gpu": "16"}}


def test_the_guard_is_owned_whole_but_a_foreign_value_in_a_defaulted_field_is_drift() -> None:
    b = ("ValidatingAdmissionPolicyBinding", "", to.GUARD)
    p = ("ValidatingAdmissionPolicy", "", to.GUARD)

    def exempt(live: Any) -> None:
        live[b]["spec"]["matchResources"]["objectSelector"] = {"matchLabels": {"x": "y"}}

    def loosen(live: Any) -> None:
        live[p]["spec"]["matchConstraints"]["matchPolicy"] = "Exact"

    def extra_condition(live: Any) -> None:
        live[p]["spec"]["matchConditions"].append({"name": "never", "expression": "false"})

    for edit in (exempt, loosen, extra_condition):
        assert _drift(edit).obj is not None


def test_a_missing_object_is_created_not_replaced() -> None:
    live = live_of(want())
    del live[("RoleBinding", "tenant-acme", to.ROLE)]
    [step] = td.apply_steps(live, want())
    assert (step.change.kind, step.replace, step.kind) == (ChangeKind.CREATE, False, "RoleBinding")


def test_the_namespace_kept_for_data_loses_its_pools_and_keeps_foreign_labels() -> None:
    live = live_of(want())
    live[("Namespace", "", "tenant-acme")]["metadata"]["labels"]["team"] = "research"
    steps = td.delete_steps("acme", live, ["data"], purge_data=False)
    kept = steps[-1]
    assert (kept.kind, kept.replace) == ("Namespace", True)
    assert kept.obj is not None
    assert kept.obj["metadata"]["labels"] == to.marker("acme") | {
        "team": "research",
        "kubernetes.io/metadata.name": "tenant-acme",
    }
