"""The admission policies that hold every tenant namespace to what computectl sells.

Two cluster-wide ValidatingAdmissionPolicies, each with its binding, shared by every
tenant and never deleted with one (pure builders; `scheduler.kubernetes.tenant_objects`
puts them first in a tenant's objects, and apply repairs them like the rest). Their
bindings match only namespaces computectl made for tenants (its marker and a tenant
label), labels the tenants' own users cannot write.

``computectl-tenant-gpu-pools`` — where a tenant's pods run. It checks the pod spec of
every Pod created and of every workload template (Deployment, ReplicaSet, StatefulSet,
DaemonSet, Job, CronJob) created or changed. The pods a controller makes are Pods and
would be refused anyway; checking the template as well refuses the workload when the
user submits it, with the reason, instead of leaving a controller failing quietly:

* a pod requesting GPUs pins ``computectl.io/pool`` in its nodeSelector to a pool whose
  label the namespace has (the pools the tenant bought);
* no ``nodeName``: it goes around the scheduler, and with it the pool pinning, cordons
  and the taints computectl drains with (the scheduler binds through ``pods/binding``,
  never a Pod create, so no legitimate pod sets it);
* no toleration of computectl's drain taint or of the cordon (nor a key-less toleration,
  which tolerates every taint): a tenant pod never lands on a drained node;
* no ``system-*`` priority class: those preempt other tenants' pods.

``computectl-tenant-objects`` — the tenant's other objects:

* no Secret of type ``kubernetes.io/service-account-token``: the token controller fills
  one with a token of the named ServiceAccount that never expires, around the expiring
  kubeconfigs computectl issues (ordinary Secrets are unaffected);
* Services stay inside the cluster (ClusterIP, headless, ExternalName): no
  ``externalIPs`` (which take over traffic to any address, cluster-wide), no NodePort or
  LoadBalancer (every node's ports; the namespace's NetworkPolicy lets in only its own
  pods, so these would only open holes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scheduler.kubernetes.objects import TAINT_KEY, TENANT_LABEL

MANAGED_BY = "computectl.io/managed-by"
MANAGER = "computectl"
POOL_LABEL = "computectl.io/pool"
POOL_ALLOWED_PREFIX = "pool.computectl.io/"
GUARD = "computectl-tenant-gpu-pools"
OBJECTS_GUARD = "computectl-tenant-objects"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
# Taints a tenant pod may not tolerate: computectl's drain and the cordon's own.
GUARDED_TAINTS = (TAINT_KEY, "node.kubernetes.io/unschedulable")
# Workload kinds whose pod template the guard checks, by API group.
TEMPLATE_KINDS = {
    "apps": ("deployments", "replicasets", "statefulsets", "daemonsets"),
    "batch": ("jobs", "cronjobs"),
}
SERVICE_TYPES = ("ClusterIP", "ExternalName")


def _pod_spec(obj: str) -> str:
    """CEL: the pod spec of ``obj`` (a Pod, a CronJob, or a kind with spec.template)."""
    return (
        f"({obj}.kind == 'Pod' ? {obj}.spec : "
        f"({obj}.kind == 'CronJob' ? {obj}.spec.jobTemplate.spec.template.spec"
        f" : {obj}.spec.template.spec))"
    )


def _rule(group: str, resources: list[str], operations: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["v1"],
        "operations": operations,
        "resources": resources,
    }


def _check(expression: str, message: str) -> dict[str, Any]:
    return {"expression": expression, "message": f"computectl: {message}", "reason": "Forbidden"}


def _policy(name: str, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    labels = {MANAGED_BY: MANAGER}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": labels},
        "spec": {"failurePolicy": "Fail", **spec},
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            # Only namespaces computectl made for tenants: others labelled with a tenant
            # (by an operator, for accounting) are not ours to police.
            "matchResources": {
                "namespaceSelector": {
                    "matchLabels": {MANAGED_BY: MANAGER},
                    "matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}],
                }
            },
        },
    }
    return [policy, binding]


def pod_guard(gpu_resource: str) -> list[dict[str, Any]]:
    """Where tenants' pods run: the policy and its binding."""
    res = json.dumps(gpu_resource)
    pool, prefix = json.dumps(POOL_LABEL), json.dumps(POOL_ALLOWED_PREFIX)
    spec = "variables.spec"
    pinned = (
        f"has({spec}.nodeSelector) && {pool} in {spec}.nodeSelector"
        f" && ({prefix} + {spec}.nodeSelector[{pool}]) in namespaceObject.metadata.labels"
    )
    taints = json.dumps(list(GUARDED_TAINTS))
    tolerates = (
        f"has({spec}.tolerations) && {spec}.tolerations.exists(t, "
        f"!has(t.key) || t.key == '' || t.key in {taints})"
    )
    rules = [_rule("", ["pods"], ["CREATE"])] + [
        _rule(group, list(kinds), ["CREATE", "UPDATE"]) for group, kinds in TEMPLATE_KINDS.items()
    ]
    return _policy(
        GUARD,
        {
            "matchConstraints": {"resourceRules": rules},
            # An update that leaves the pod template as it was (a scale, a controller's
            # bookkeeping) is not checked again: it starts no pod that was not checked.
            "matchConditions": [
                {
                    "name": "new-pod-spec",
                    "expression": (
                        "request.operation != 'UPDATE' || oldObject == null || "
                        f"{_pod_spec('object')} != {_pod_spec('oldObject')}"
                    ),
                }
            ],
            "variables": [
                {"name": "spec", "expression": _pod_spec("object")},
                {
                    "name": "gpus",
                    "expression": (
                        f"((has({spec}.initContainers) ? {spec}.initContainers : [])"
                        f" + {spec}.containers).exists(c, has(c.resources) && ("
                        f"(has(c.resources.limits) && {res} in c.resources.limits) || "
                        f"(has(c.resources.requests) && {res} in c.resources.requests)))"
                    ),
                },
            ],
            "validations": [
                _check(
                    f"!variables.gpus || ({pinned})",
                    f"a pod requesting {gpu_resource} must set nodeSelector {POOL_LABEL} to "
                    f"a pool of this tenant (namespace labels {POOL_ALLOWED_PREFIX}<pool>)",
                ),
                _check(
                    f"!has({spec}.nodeName) || {spec}.nodeName == ''",
                    "tenant pods may not set spec.nodeName: it bypasses the scheduler, and "
                    "with it pool pinning, cordons and drains",
                ),
                _check(
                    f"!({tolerates})",
                    "tenant pods may not tolerate "
                    f"{' or '.join(GUARDED_TAINTS)} (nor every taint, a toleration without "
                    "a key): those keep pods off drained and cordoned nodes",
                ),
                _check(
                    f"!has({spec}.priorityClassName) || "
                    f"!{spec}.priorityClassName.startsWith('system-')",
                    "tenant pods may not use system-* priority classes: they preempt other "
                    "tenants' pods",
                ),
            ],
        },
    )


def objects_guard() -> list[dict[str, Any]]:
    """The tenant's Secrets and Services: the policy and its binding."""
    token = json.dumps(TOKEN_SECRET_TYPE)
    # dyn(): each check reads fields of one kind, which the type checker would report
    # as missing for the other (a warning in the policy's status, not a failure).
    obj = "dyn(object)"
    svc = f"{obj}.spec"
    return _policy(
        OBJECTS_GUARD,
        {
            "matchConstraints": {
                "resourceRules": [_rule("", ["secrets", "services"], ["CREATE", "UPDATE"])]
            },
            "validations": [
                _check(
                    f"object.kind != 'Secret' || !has({obj}.type) || {obj}.type != {token}",
                    f"Secrets of type {TOKEN_SECRET_TYPE} are refused in tenant namespaces: "
                    "their ServiceAccount token never expires. Use the expiring kubeconfig "
                    "from `computectl tenants kubeconfig`, or a pod's projected token",
                ),
                _check(
                    f"object.kind != 'Service' || !has({svc}.externalIPs) "
                    f"|| size({svc}.externalIPs) == 0",
                    "tenant Services may not set externalIPs: they capture traffic to "
                    "those addresses cluster-wide",
                ),
                _check(
                    f"object.kind != 'Service' || !has({svc}.type) "
                    f"|| {svc}.type in {json.dumps(list(SERVICE_TYPES))}",
                    "tenant Services stay inside the cluster (ClusterIP, headless or "
                    "ExternalName): NodePort and LoadBalancer are refused",
                ),
            ],
        },
    )


def guards(gpu_resource: str) -> list[dict[str, Any]]:
    """Every cluster-wide admission object tenants rely on, in the order apply makes them."""
    return [*pod_guard(gpu_resource), *objects_guard()]


def line(obj: Mapping[str, Any]) -> str:
    """A policy or binding in one line."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    spec = obj.get("spec") or {}
    if obj.get("kind") == "ValidatingAdmissionPolicyBinding":
        actions = ",".join(spec.get("validationActions") or [])
        return f"policy={spec.get('policyName', '')} actions={actions}"
    # The number of checks tells an older policy (computectl's own, before an upgrade)
    # from the current one in a plan.
    checks = f"{len(spec.get('validations') or [])} checks"
    if name == GUARD:
        return (
            "GPU pods pin a pool of their tenant; no nodeName, drain/cordon tolerations "
            f"or system priority (pods and workload templates; {checks})"
        )
    if name == OBJECTS_GUARD:
        return (
            "no ServiceAccount token Secrets; Services without externalIPs, NodePort, "
            f"LoadBalancer ({checks})"
        )
    return checks
