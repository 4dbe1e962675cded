"""Tenants as Kubernetes objects: what a spec asks for, how live objects compare, the diff.

One tenant is one namespace, ``tenant-<name>`` (pure functions here;
`scheduler.kubernetes.tenants` reads and writes them). Every object computectl
makes carries ``computectl.io/managed-by=computectl`` (the ownership marker: an
object without it is never changed or deleted) and ``computectl.io/tenant=<name>``:

* ``Namespace tenant-<name>``: the marker, ``pod-security.kubernetes.io/enforce=baseline``
  and one label ``pool.computectl.io/<pool>=allowed`` per pool of its quotas — the
  pools the admission guard lets its GPU pods use.
* ``ResourceQuota computectl-gpu``: ``requests.nvidia.com/gpu`` = the sum of the
  tenant's quotas in this cluster (a quota on ``nvidia.com/gpu`` alone would not limit
  an extended resource). Suspended: 0, and ``pods`` 0 — running pods continue, quota
  admission rejects new ones.
* ``LimitRange computectl-defaults``: default CPU/memory requests, so pods that name
  only GPUs are still scheduled and accounted sanely.
* ``ServiceAccount tenant``, ``Role``/``RoleBinding computectl-tenant``: the usual
  verbs on the namespace's workloads, for the ServiceAccount and each user
  (``kind: User``); the tenant's kubeconfig is a bound token of that ServiceAccount.
* ``NetworkPolicy computectl-default-deny``: ingress and egress only within the
  namespace, plus DNS to kube-system.
* ``ValidatingAdmissionPolicy`` + binding ``computectl-tenant-gpu-pools`` (cluster-wide,
  shared by every tenant, never deleted with one): in namespaces carrying both
  computectl labels, a pod requesting GPUs must pin ``computectl.io/pool`` in its
  nodeSelector to a pool whose label the namespace has.

Per-pool quota: a ResourceQuota cannot select pods by node selector, so with quotas
in two pools of one cluster the tenant gets their SUM as one quota, and the policy
keeps it on those pools; how it splits the sum between them is not enforced.
A pool's GPU model is fixed by the pool, so pinning the pool pins the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.errors import InvalidRequest
from scheduler.kubernetes.objects import TENANT_LABEL, labels_of, meta
from scheduler.tenants import Change, ChangeKind, TenantSpec

MANAGED_BY = "computectl.io/managed-by"
MANAGER = "computectl"
POOL_LABEL = "computectl.io/pool"
POOL_ALLOWED_PREFIX = "pool.computectl.io/"
NAMESPACE_PREFIX = "tenant-"
SERVICE_ACCOUNT = "tenant"
QUOTA = "computectl-gpu"
LIMITS = "computectl-defaults"
ROLE = "computectl-tenant"
NETWORK_POLICY = "computectl-default-deny"
GUARD = "computectl-tenant-gpu-pools"
_OUR_LABEL_PREFIXES = ("computectl.io/", POOL_ALLOWED_PREFIX, "pod-security.kubernetes.io/")

# Kinds of the tenant's own work, removed with the tenant (controllers first, so they
# cannot recreate the pods). PVCs are not here: they hold data and go only with a purge.
WORKLOAD_KINDS = (
    "CronJob", "Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod",
    "Service", "ConfigMap", "Secret",
)  # fmt: skip

_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_RULES = [
    {
        "apiGroups": [""],
        "resources": [
            "pods", "pods/log", "services", "configmaps", "secrets",
            "persistentvolumeclaims",
        ],
        "verbs": _VERBS,
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "replicasets"],
        "verbs": _VERBS,
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _VERBS},
]  # fmt: skip


def namespace_of(name: str) -> str:
    return f"{NAMESPACE_PREFIX}{name}"


def marker(name: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, TENANT_LABEL: name}


def is_ours(obj: Mapping[str, Any]) -> bool:
    return labels_of(obj).get(MANAGED_BY) == MANAGER


def pool_label_values(pools: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """pool → its value of ``computectl.io/pool`` (what a pod's nodeSelector must pin)."""
    return {p: sel[POOL_LABEL] for p, sel in pools.items() if POOL_LABEL in sel}


# -- the objects ---------------------------------------------------------------------------------


def _obj(api_version: str, kind: str, name: str, namespace: str, tenant: str) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "labels": marker(tenant)}
    if namespace:
        m["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": m}


def guard(gpu_resource: str) -> list[dict[str, Any]]:
    """The cluster-wide admission policy keeping tenants' GPU pods on their pools."""
    res = json.dumps(gpu_resource)
    inits = "(has(object.spec.initContainers) ? object.spec.initContainers : [])"
    wants_gpus = (
        f"({inits} + object.spec.containers).exists(c, has(c.resources) && ("
        f"(has(c.resources.limits) && {res} in c.resources.limits) || "
        f"(has(c.resources.requests) && {res} in c.resources.requests)))"
    )
    pool, prefix = json.dumps(POOL_LABEL), json.dumps(POOL_ALLOWED_PREFIX)
    pinned = (
        f"has(object.spec.nodeSelector) && {pool} in object.spec.nodeSelector"
        f" && ({prefix} + object.spec.nodeSelector[{pool}]) in namespaceObject.metadata.labels"
    )
    labels = {MANAGED_BY: MANAGER}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": GUARD, "labels": labels},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "matchConditions": [{"name": "requests-gpus", "expression": wants_gpus}],
            "validations": [
                {
                    "expression": pinned,
                    "message": (
                        f"computectl: a pod requesting {gpu_resource} must set nodeSelector "
                        f"{POOL_LABEL} to a pool of this tenant (namespace labels "
                        f"{POOL_ALLOWED_PREFIX}<pool>)"
                    ),
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": GUARD, "labels": labels},
        "spec": {
            "policyName": GUARD,
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


def desired(
    spec: TenantSpec, pool_values: Mapping[str, str], gpu_resource: str
) -> list[dict[str, Any]]:
    """Every object of the tenant, in the order apply makes them (the guard first)."""
    name, ns = spec.name, namespace_of(spec.name)
    missing = sorted({q.pool for q in spec.quotas} - set(pool_values))
    if missing:
        raise InvalidRequest(
            f"pool(s) {', '.join(missing)} select nodes without {POOL_LABEL}: the admission "
            "guard cannot pin tenant pods to them"
        )
    namespace = _obj("v1", "Namespace", ns, "", name)
    namespace["metadata"]["labels"] |= {"pod-security.kubernetes.io/enforce": "baseline"} | {
        f"{POOL_ALLOWED_PREFIX}{pool_values[q.pool]}": "allowed" for q in spec.quotas
    }
    sa = _obj("v1", "ServiceAccount", SERVICE_ACCOUNT, ns, name)
    role = _obj("rbac.authorization.k8s.io/v1", "Role", ROLE, ns, name) | {"rules": _RULES}
    binding = _obj("rbac.authorization.k8s.io/v1", "RoleBinding", ROLE, ns, name) | {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}]
        + [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u}
            for u in sorted(spec.users)
        ],
    }
    return [
        *guard(gpu_resource),
        namespace,
        sa,
        role,
        binding,
        quota(spec, gpu_resource),
        _obj("v1", "LimitRange", LIMITS, ns, name)
        | {
            "spec": {
                "limits": [
                    {"type": "Container", "defaultRequest": {"cpu": "100m", "memory": "256Mi"}}
                ]
            }
        },
        _obj("networking.k8s.io/v1", "NetworkPolicy", NETWORK_POLICY, ns, name)
        | {
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [
                    {"to": [{"podSelector": {}}]},
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                }
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": 53},
                            {"protocol": "TCP", "port": 53},
                        ],
                    },
                ],
            }
        },
    ]


def quota(spec: TenantSpec, gpu_resource: str) -> dict[str, Any]:
    hard = {f"requests.{gpu_resource}": str(0 if spec.suspended else spec_gpus(spec))}
    if spec.suspended:
        hard["pods"] = "0"
    obj = _obj("v1", "ResourceQuota", QUOTA, namespace_of(spec.name), spec.name)
    return obj | {"spec": {"hard": hard}}


def spec_gpus(spec: TenantSpec) -> int:
    return sum(q.gpus for q in spec.quotas)


# -- comparing -----------------------------------------------------------------------------------


def _project(live: Any, want: Any) -> Any:
    """``live`` cut down to the fields ``want`` sets: the API server's defaults and other
    writers' fields do not count as a difference."""
    if isinstance(want, dict) and isinstance(live, dict):
        return {k: _project(live[k], v) for k, v in want.items() if k in live}
    if isinstance(want, list) and isinstance(live, list) and len(want) == len(live):
        return [_project(a, b) for a, b in zip(live, want, strict=True)]
    return live


def view(live: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """What of ``live`` computectl manages, shaped like ``want``."""
    out: dict[str, Any] = _project(dict(live), dict(want))
    # Maps computectl owns whole: a key it no longer sets (a pool left, "pods" after a
    # resume) is a difference too.
    out.setdefault("metadata", {})["labels"] = {
        k: v for k, v in labels_of(live).items() if k.startswith(_OUR_LABEL_PREFIXES)
    }
    if live.get("kind") == "ResourceQuota":
        out.setdefault("spec", {})["hard"] = dict((live.get("spec") or {}).get("hard") or {})
    return out


def _own_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in labels_of(obj).items() if k.startswith(_OUR_LABEL_PREFIXES)}


def target(obj: Mapping[str, Any]) -> str:
    m = meta(obj)
    where = f"{m['namespace']}/" if m.get("namespace") else ""
    return f"{str(obj.get('kind', '')).lower()} {where}{m.get('name', '')}"


def line(obj: Mapping[str, Any]) -> str:
    """The object in one line, in the words kubectl would show."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Namespace":
        labels = _own_labels(obj)
        pools = sorted(
            k[len(POOL_ALLOWED_PREFIX) :] for k in labels if k.startswith(POOL_ALLOWED_PREFIX)
        )
        return f"pools={','.join(pools) or '-'} tenant={labels.get(TENANT_LABEL, '-')}"
    if kind == "ResourceQuota":
        return " ".join(f"{k}={v}" for k, v in sorted((spec.get("hard") or {}).items()))
    if kind == "RoleBinding":
        subjects = obj.get("subjects") or []
        return "subjects=" + ",".join(f"{s.get('kind')}/{s.get('name')}" for s in subjects)
    if kind == "Role":
        rules = obj.get("rules") or []
        return "resources=" + ",".join(r for rule in rules for r in rule.get("resources") or [])
    if kind == "LimitRange":
        limits = spec.get("limits") or [{}]
        req = limits[0].get("defaultRequest") or {}
        return "defaultRequest " + " ".join(f"{k}={v}" for k, v in sorted(req.items()))
    if kind == "NetworkPolicy":
        return "deny all but same-namespace ingress/egress and DNS"
    if kind == "ValidatingAdmissionPolicy":
        return "GPU pods must pin computectl.io/pool to a pool of their tenant"
    if kind == "ValidatingAdmissionPolicyBinding":
        actions = ",".join(spec.get("validationActions") or [])
        return f"policy={spec.get('policyName', '')} actions={actions}"
    return "present"


# -- the diff ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One object to apply (``obj``) or delete (``obj`` None: ``kind``/``name``/``namespace``)."""

    change: Change
    kind: str
    name: str
    namespace: str = ""
    obj: dict[str, Any] | None = None


def foreign(live: Mapping[tuple[str, str, str], Mapping[str, Any] | None]) -> list[str]:
    """Targets of live objects with computectl's names but without its marker."""
    return [target(o) for o in live.values() if o is not None and not is_ours(o)]


def key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    m = meta(obj)
    return (str(obj.get("kind", "")), str(m.get("namespace", "")), str(m.get("name", "")))


def apply_steps(
    live: Mapping[tuple[str, str, str], Mapping[str, Any] | None], want: list[dict[str, Any]]
) -> list[Step]:
    """Create what is missing, update what differs (one Change per object)."""
    out: list[Step] = []
    for obj in want:
        kind, ns, name = key(obj)
        current = live.get((kind, ns, name))
        if current is None:
            change = Change(ChangeKind.CREATE, target(obj), "", line(obj))
        else:
            seen = view(current, obj)
            if seen == _normal(obj):
                continue
            change = Change(ChangeKind.UPDATE, target(obj), line(current), line(obj))
        out.append(Step(change, kind, name, ns, obj))
    return out


def _normal(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as `view` would show it had the API server stored it unchanged."""
    out = json.loads(json.dumps(obj))
    out["metadata"]["labels"] = _own_labels(obj)
    return dict(out)


def delete_steps(
    name: str,
    live: Mapping[tuple[str, str, str], Mapping[str, Any] | None],
    pvcs: list[str],
    purge_data: bool,
) -> list[Step]:
    """Remove the tenant's objects (never the shared guard). The namespace stays while it
    holds PersistentVolumeClaims, unless ``purge_data``: then it goes, and they with it."""
    ns = namespace_of(name)
    out: list[Step] = []
    for (kind, obj_ns, obj_name), obj in reversed(list(live.items())):
        if obj is None or kind == "Namespace" or not obj_ns:
            continue
        out.append(
            Step(Change(ChangeKind.DELETE, target(obj), line(obj), ""), kind, obj_name, obj_ns)
        )
    namespace = live.get(("Namespace", "", ns))
    if namespace is None:
        return out
    if pvcs and not purge_data:
        kept = dict(namespace)
        kept_obj = _obj("v1", "Namespace", ns, "", name)  # no pool labels: no GPU pods
        out.append(
            Step(
                Change(
                    ChangeKind.UPDATE,
                    target(namespace),
                    line(kept),
                    f"kept for {len(pvcs)} PersistentVolumeClaim(s); no pools",
                ),
                "Namespace",
                ns,
                "",
                kept_obj,
            )
        )
        return out
    out += [
        Step(
            Change(ChangeKind.DELETE, f"persistentvolumeclaim {ns}/{p}", "data", ""),
            "PersistentVolumeClaim",
            p,
            ns,
        )
        for p in pvcs
    ]
    out.append(
        Step(Change(ChangeKind.DELETE, target(namespace), line(namespace), ""), "Namespace", ns)
    )
    return out
