"""The tenant admission policies as objects: what they match, what they check, and how
apply treats them and the token Secrets they refuse (the API server's verdicts are in
tests/integration/test_kubernetes_tenant_escapes.py)."""

from __future__ import annotations

import copy
from typing import Any

from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes import tenant_policy as tp
from scheduler.tenants import ChangeKind, GpuQuota, TenantSpec
from tests.unit.test_kubernetes_tenant_diff import live_of

SPEC = TenantSpec("acme", users=("alice",), quotas=(GpuQuota("training", "H100-SXM", 16),))


def by_name(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_both_policies_and_bindings_come_first_and_are_computectls() -> None:
    want = to.desired(SPEC, {"training": "training"}, "nvidia.com/gpu")
    first = [(o["kind"], o["metadata"]["name"]) for o in want[:4]]
    assert sorted(first) == sorted(
        (kind, name)
        for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
        for name in (tp.GUARD, tp.OBJECTS_GUARD)
    )
    for obj in want[:4]:
        assert to.is_ours(obj) and "namespace" not in obj["metadata"]
        if obj["kind"] == "ValidatingAdmissionPolicyBinding":
            spec = obj["spec"]
            assert spec["validationActions"] == ["Deny"]
            assert spec["policyName"] == obj["metadata"]["name"]
            selector = spec["matchResources"]["namespaceSelector"]
            assert selector["matchLabels"] == {to.MANAGED_BY: to.MANAGER}
            assert selector["matchExpressions"] == [
                {"key": "computectl.io/tenant", "operator": "Exists"}
            ]
        else:
            assert obj["spec"]["failurePolicy"] == "Fail"
            for check in obj["spec"]["validations"]:
                assert check["message"].startswith("computectl: ")
                assert check["reason"] == "Forbidden"


def test_the_pod_guard_matches_pods_on_create_and_templates_on_create_and_update() -> None:
    policy = by_name(tp.pod_guard("nvidia.com/gpu"))[("ValidatingAdmissionPolicy", tp.GUARD)]
    rules = {
        (rule["apiGroups"][0], resource): rule["operations"]
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        for resource in rule["resources"]
    }
    assert rules.pop(("", "pods")) == ["CREATE"]
    assert rules == {
        (group, kind): ["CREATE", "UPDATE"]
        for group, kinds in (
            ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
            ("batch", ("jobs", "cronjobs")),
        )
        for kind in kinds
    }
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert "object.spec.jobTemplate.spec.template.spec" in variables["spec"]
    assert '"nvidia.com/gpu" in c.resources.limits' in variables["gpus"]
    assert '"nvidia.com/gpu" in c.resources.requests' in variables["gpus"]
    [condition] = policy["spec"]["matchConditions"]
    assert "oldObject" in condition["expression"]
    text = " ".join(c["expression"] for c in policy["spec"]["validations"])
    for needle in ("nodeName", "tolerations", "computectl.io/unhealthy", "system-"):
        assert needle in text


def test_another_gpu_resource_is_the_one_checked() -> None:
    policy = tp.pod_guard("amd.com/gpu")[0]
    gpus = next(v for v in policy["spec"]["variables"] if v["name"] == "gpus")
    assert '"amd.com/gpu"' in gpus["expression"] and "nvidia" not in gpus["expression"]
    assert "amd.com/gpu" in policy["spec"]["validations"][0]["message"]


def test_the_objects_guard_refuses_token_secrets_and_services_leaving_the_cluster() -> None:
    policy = by_name(tp.objects_guard())[("ValidatingAdmissionPolicy", tp.OBJECTS_GUARD)]
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["resources"], rule["operations"]) == (
        ["secrets", "services"],
        ["CREATE", "UPDATE"],
    )
    checks = policy["spec"]["validations"]
    assert '"kubernetes.io/service-account-token"' in checks[0]["expression"]
    assert "computectl tenants kubeconfig" in checks[0]["message"]
    assert "externalIPs" in checks[1]["expression"]
    assert '["ClusterIP", "ExternalName"]' in checks[2]["expression"]


def test_an_older_policy_of_ours_is_drift_and_the_plan_says_how() -> None:
    want = to.desired(SPEC, {"training": "training"}, "nvidia.com/gpu")
    live = live_of(want)
    older = live[("ValidatingAdmissionPolicy", "", tp.GUARD)]
    older["spec"]["validations"] = older["spec"]["validations"][:1]
    [step] = td.apply_steps(live, want)
    assert step.replace and step.change.target == f"validatingadmissionpolicy {tp.GUARD}"
    assert "1 checks" in step.change.before and "4 checks" in step.change.after


def test_pod_security_labels_are_owned_and_a_changed_one_shows_in_the_plan() -> None:
    want = to.desired(SPEC, {"training": "training"}, "nvidia.com/gpu")
    namespace = want[4]
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["labels"].items() >= to.POD_SECURITY.items()
    assert td.line(namespace) == "pools=training tenant=acme"
    loose = copy.deepcopy(namespace)
    loose["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    assert td.line(loose) == "pools=training tenant=acme (enforce=privileged warn=baseline)"
    live = live_of(want)
    live[("Namespace", "", "tenant-acme")] = live_of([loose])[("Namespace", "", "tenant-acme")]
    [step] = td.apply_steps(live, want)
    assert step.obj is not None
    assert step.obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_only_service_account_token_secrets_are_deleted() -> None:
    def secret(name: str, kind: str, account: str = "") -> dict[str, Any]:
        notes = {"kubernetes.io/service-account.name": account} if account else {}
        return {
            "metadata": {"name": name, "namespace": "tenant-acme", "annotations": notes},
            "type": kind,
        }

    steps = td.token_secret_steps(
        [
            secret("forever", tp.TOKEN_SECRET_TYPE, "tenant"),
            secret("plain", "Opaque"),
            secret("registry", "kubernetes.io/dockerconfigjson"),
            secret("old-default", tp.TOKEN_SECRET_TYPE, "default"),
        ]
    )
    assert [(s.kind, s.namespace, s.name, s.obj) for s in steps] == [
        ("Secret", "tenant-acme", "forever", None),
        ("Secret", "tenant-acme", "old-default", None),
    ]
    assert steps[0].change.kind is ChangeKind.DELETE
    assert steps[0].change.target == "secret tenant-acme/forever"
    assert steps[0].change.before == "token of serviceaccount tenant that never expires"
    assert td.token_secret_steps([]) == []
