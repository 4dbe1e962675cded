"""Tenants as Kubernetes objects: what a spec asks for.

One tenant is one namespace, ``tenant-<name>`` (pure functions here; how live objects
compare with these is `scheduler.kubernetes.tenant_diff`; `scheduler.kubernetes.tenants`
reads and writes them). Every object computectl makes carries
``computectl.io/managed-by=computectl`` (the ownership marker: an object without it is
never changed or deleted) and ``computectl.io/tenant=<name>``:

* ``Namespace tenant-<name>``: the marker, ``pod-security.kubernetes.io/enforce=baseline``
  (no privileged, hostNetwork, hostPath … pods, whoever creates them; ``warn=baseline``
  tells a user at once when a workload's template would be refused) and one label
  ``pool.computectl.io/<pool>=allowed`` per pool of its quotas — the pools the
  admission guard lets its GPU pods use.
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
* ``ValidatingAdmissionPolicy`` + binding ``computectl-tenant-gpu-pools`` and
  ``computectl-tenant-objects`` (cluster-wide, shared by every tenant, never deleted
  with one; `scheduler.kubernetes.tenant_policy`): in namespaces carrying both
  computectl labels, a pod (or workload template) requesting GPUs must pin
  ``computectl.io/pool`` in its nodeSelector to a pool whose label the namespace has,
  and no pod may set nodeName, tolerate a drain or use a system priority; no
  ServiceAccount token Secrets; Services stay inside the cluster.

computectl owns these whole: labels under its prefixes (``computectl.io/``,
``pool.computectl.io/``, ``pod-security.kubernetes.io/``) and the objects' specs, rules
and subjects. Anything another hand adds there is drift, which apply removes — the
admission guard trusts the namespace's pool labels, so they can only be computectl's.
The tenant's own users cannot write any of them: their Role covers workloads only
(no namespaces, quotas, limit ranges, network policies, RBAC, ServiceAccounts or
their tokens, admission objects, or subresources such as pods/binding, exec or
ephemeralcontainers).

Per-pool quota: a ResourceQuota cannot select pods by node selector, so with quotas
in two pools of one cluster the tenant gets their SUM as one quota, and the policy
keeps it on those pools; how it splits the sum between them is not enforced.
A pool's GPU model is fixed by the pool, so pinning the pool pins the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.errors import InvalidRequest
from scheduler.kubernetes import tenant_queues as tq
from scheduler.kubernetes.objects import TENANT_LABEL, labels_of
from scheduler.kubernetes.tenant_policy import GUARD as GUARD
from scheduler.kubernetes.tenant_policy import MANAGED_BY as MANAGED_BY
from scheduler.kubernetes.tenant_policy import MANAGER as MANAGER
from scheduler.kubernetes.tenant_policy import OBJECTS_GUARD as OBJECTS_GUARD
from scheduler.kubernetes.tenant_policy import POOL_ALLOWED_PREFIX as POOL_ALLOWED_PREFIX
from scheduler.kubernetes.tenant_policy import POOL_LABEL as POOL_LABEL
from scheduler.kubernetes.tenant_policy import TOKEN_SECRET_TYPE as TOKEN_SECRET_TYPE
from scheduler.kubernetes.tenant_policy import guards
from scheduler.tenants import TenantSpec

NAMESPACE_PREFIX = "tenant-"
SERVICE_ACCOUNT = "tenant"
QUOTA = "computectl-gpu"
LIMITS = "computectl-defaults"
ROLE = "computectl-tenant"
NETWORK_POLICY = "computectl-default-deny"
POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"
OUR_LABEL_PREFIXES = ("computectl.io/", POOL_ALLOWED_PREFIX, POD_SECURITY_PREFIX)

# Pod security admission for every tenant pod; the warning reaches users creating a
# workload whose pods would be refused (enforce alone only fails the controller).
POD_SECURITY = {
    f"{POD_SECURITY_PREFIX}enforce": "baseline",
    f"{POD_SECURITY_PREFIX}warn": "baseline",
}
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


def base_object(
    api_version: str, kind: str, name: str, namespace: str, tenant: str
) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "labels": marker(tenant)}
    if namespace:
        m["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": m}


def desired(
    spec: TenantSpec, pool_values: Mapping[str, str], gpu_resource: str, queues: bool = False
) -> list[dict[str, Any]]:
    """Every object of the tenant, in the order apply makes them: the cluster-wide guard
    (and, with ``queues``, the shared ResourceFlavors), the namespace with its labels, its
    limits (quota, LimitRange, NetworkPolicy; with ``queues`` its ClusterQueue and
    LocalQueue: `scheduler.kubernetes.tenant_queues`), and only then access
    (ServiceAccount, Role, RoleBinding). Delete goes the other way."""
    name, ns = spec.name, namespace_of(spec.name)
    missing = sorted({q.pool for q in spec.quotas} - set(pool_values))
    if missing:
        raise InvalidRequest(
            f"pool(s) {', '.join(missing)} select nodes without {POOL_LABEL}: the admission "
            "guard cannot pin tenant pods to them"
        )
    namespace = base_object("v1", "Namespace", ns, "", name)
    namespace["metadata"]["labels"] |= POD_SECURITY | {
        f"{POOL_ALLOWED_PREFIX}{pool_values[q.pool]}": "allowed" for q in spec.quotas
    }
    if queues:
        namespace["metadata"]["labels"][tq.QUEUE_LABEL] = tq.QUEUE_VALUE
    sa = base_object("v1", "ServiceAccount", SERVICE_ACCOUNT, ns, name)
    rules = [*_RULES, tq.QUEUE_RULE] if queues else _RULES
    role = base_object("rbac.authorization.k8s.io/v1", "Role", ROLE, ns, name) | {"rules": rules}
    binding = base_object("rbac.authorization.k8s.io/v1", "RoleBinding", ROLE, ns, name) | {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}]
        + [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u}
            for u in sorted(spec.users)
        ],
    }
    # Guards before access: an apply cut short part-way leaves no namespace whose users
    # can start pods without the quota, the defaults and the pool guard.
    return [
        *guards(gpu_resource),
        *(tq.flavors(spec, pool_values) if queues else []),
        namespace,
        quota(spec, gpu_resource, queues),
        base_object("v1", "LimitRange", LIMITS, ns, name)
        | {
            "spec": {
                "limits": [
                    {"type": "Container", "defaultRequest": {"cpu": "100m", "memory": "256Mi"}}
                ]
            }
        },
        base_object("networking.k8s.io/v1", "NetworkPolicy", NETWORK_POLICY, ns, name)
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
        *([tq.cluster_queue(spec, ns, gpu_resource), tq.local_queue(spec, ns)] if queues else []),
        sa,
        role,
        binding,
    ]


def quota(spec: TenantSpec, gpu_resource: str, queues: bool = False) -> dict[str, Any]:
    """The summed GPU quota, or under Kueue (``queues``) none but the suspended one: a pod
    waiting at Kueue's admission gate already counts against a ResourceQuota, so a summed
    one would refuse a pod in pool Y while pods wait in X, breaking the split it would back
    up (and the internal tenant's borrowing is bounded by the cohort alone)."""
    hard: dict[str, str] = {}
    if spec.suspended or not queues:
        hard[f"requests.{gpu_resource}"] = str(0 if spec.suspended else spec_gpus(spec))
    if spec.suspended:
        hard["pods"] = "0"
    obj = base_object("v1", "ResourceQuota", QUOTA, namespace_of(spec.name), spec.name)
    # An empty hard list is not stored: left out, so a re-apply finds nothing to change.
    return obj | {"spec": {"hard": hard} if hard else {}}


def spec_gpus(spec: TenantSpec) -> int:
    return sum(q.gpus for q in spec.quotas)
