"""Per-pool, per-GPU-model quotas of a tenant, as Kueue's objects (pure builders).

A ResourceQuota cannot tell one pool's GPUs from another's, so with quotas of 8 GPUs in
pool X and 8 in pool Y a tenant's summed quota of 16 would let it run 16 in X. Kueue
admits a workload only within a quota per flavor, and computectl makes one flavor per
pool and GPU model:

* ``ResourceFlavor <pool>-<model>`` (cluster-wide, shared by every tenant; deleted with
  the last tenant whose ClusterQueue names it): node labels
  ``computectl.io/pool=<the pool's label value>``, which Kueue also puts in the admitted
  pods' nodeSelector.
* ``ClusterQueue tenant-<name>``: the tenant's namespace only, nominal quota per flavor
  from the spec. Every tenant's queue is in the cohort ``computectl``. A customer's queue
  may not borrow (``borrowingLimit: 0``: it runs at most what it bought, per pool) and
  reclaims what it lent (``reclaimWithinCohort: Any``): the internal tenant's workloads
  running on its idle GPUs are preempted when it wants them back. The internal tenant's
  queue (``internal = true``) may borrow without limit in the flavors it lists (a quota
  of 0 GPUs lists a pool it may only borrow in) and reclaims nothing. A suspended
  tenant's queue holds (``stopPolicy: Hold``): running work continues, nothing new is
  admitted.
* ``LocalQueue default`` in the tenant's namespace: Kueue gives every Job and Pod there
  that names no queue to it (the namespace carries ``computectl.io/queue=kueue``, which
  Kueue's ``managedJobsNamespaceSelector`` selects, with ``manageJobsWithoutQueueName``),
  and the tenant cannot make another (its Role covers workloads only), so every GPU it
  runs went through its own ClusterQueue.

Kueue counts only the GPU resource: the controller's configuration excludes cpu and
memory (``resources.excludeResourcePrefixes``), which the LimitRange and the nodes bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from scheduler.kubernetes.objects import TENANT_LABEL
from scheduler.kubernetes.tenant_policy import MANAGED_BY, MANAGER, POOL_LABEL
from scheduler.tenants import TenantSpec

KUEUE_API = "kueue.x-k8s.io/v1beta2"
# The namespace label Kueue's configuration selects: Kueue manages every Job and Pod there.
QUEUE_LABEL = "computectl.io/queue"
QUEUE_VALUE = "kueue"
COHORT = "computectl"
LOCAL_QUEUE = "default"
# Read-only access to the tenant's queue and workloads: why a job waits is theirs to see.
QUEUE_RULE = {
    "apiGroups": ["kueue.x-k8s.io"],
    "resources": ["localqueues", "workloads"],
    "verbs": ["get", "list", "watch"],
}
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def cluster_queue_name(tenant: str) -> str:
    return f"tenant-{tenant}"


def flavor_name(pool: str, gpu_model: str) -> str:
    """A DNS label from the pool and model ("training", "H100-SXM" → "training-h100-sxm")."""
    return _NOT_DNS.sub("-", f"{pool}-{gpu_model}".lower()).strip("-")[:63].rstrip("-")


def _quotas(spec: TenantSpec) -> dict[tuple[str, str], int]:
    """(pool, model) → GPUs, in a stable order (two entries for one pair add up)."""
    out: dict[tuple[str, str], int] = {}
    for q in sorted(spec.quotas, key=lambda q: (q.pool, q.gpu_model)):
        out[(q.pool, q.gpu_model)] = out.get((q.pool, q.gpu_model), 0) + q.gpus
    return out


def flavors(spec: TenantSpec, pool_values: Mapping[str, str]) -> list[dict[str, Any]]:
    """The shared ResourceFlavors the tenant's quotas name."""
    return [
        {
            "apiVersion": KUEUE_API,
            "kind": "ResourceFlavor",
            "metadata": {
                "name": flavor_name(pool, model),
                "labels": {MANAGED_BY: MANAGER, POOL_LABEL: pool_values[pool]},
            },
            "spec": {"nodeLabels": {POOL_LABEL: pool_values[pool]}},
        }
        for pool, model in _quotas(spec)
    ]


def cluster_queue(spec: TenantSpec, namespace: str, gpu_resource: str) -> dict[str, Any]:
    # Quantities as the API server stores them (strings), so a re-read compares equal.
    limit: dict[str, Any] = {} if spec.internal else {"borrowingLimit": "0"}
    entries = [
        {
            "name": flavor_name(pool, model),
            "resources": [{"name": gpu_resource, "nominalQuota": str(gpus), **limit}],
        }
        for (pool, model), gpus in _quotas(spec).items()
    ]
    groups = [{"coveredResources": [gpu_resource], "flavors": entries}] if entries else []
    preemption = {
        "reclaimWithinCohort": "Never" if spec.internal else "Any",
        "withinClusterQueue": "LowerPriority",
        "borrowWithinCohort": {"policy": "Never"},
    }
    return {
        "apiVersion": KUEUE_API,
        "kind": "ClusterQueue",
        "metadata": {
            "name": cluster_queue_name(spec.name),
            "labels": {MANAGED_BY: MANAGER, TENANT_LABEL: spec.name},
        },
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "cohortName": COHORT,
            "queueingStrategy": "BestEffortFIFO",
            # Kueue's defaults, written out: its webhook would add them anyway.
            "flavorFungibility": {
                "whenCanBorrow": "MayStopSearch",
                "whenCanPreempt": "TryNextFlavor",
            },
            "resourceGroups": groups,
            "preemption": preemption,
            "stopPolicy": "Hold" if spec.suspended else "None",
        },
    }


def local_queue(spec: TenantSpec, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": KUEUE_API,
        "kind": "LocalQueue",
        "metadata": {
            "name": LOCAL_QUEUE,
            "namespace": namespace,
            "labels": {MANAGED_BY: MANAGER, TENANT_LABEL: spec.name},
        },
        "spec": {"clusterQueue": cluster_queue_name(spec.name), "stopPolicy": "None"},
    }


def line(obj: Mapping[str, Any]) -> str:
    """A Kueue object in one line."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "ResourceFlavor":
        labels = spec.get("nodeLabels") or {}
        return "nodeLabels " + (" ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-")
    if kind == "LocalQueue":
        return f"clusterQueue={spec.get('clusterQueue', '')}"
    quotas = []
    for group in spec.get("resourceGroups") or []:
        for flavor in group.get("flavors") or []:
            for res in flavor.get("resources") or []:
                cap = res.get("borrowingLimit")
                borrow = "" if cap is None else f" borrow<={cap}"
                quotas.append(f"{flavor.get('name')}={res.get('nominalQuota')}{borrow}")
    reclaim = (spec.get("preemption") or {}).get("reclaimWithinCohort", "Never")
    cohort = spec.get("cohortName", "-")
    text = f"{' '.join(quotas) or 'no quota'} cohort={cohort} reclaim={reclaim}"
    stop = spec.get("stopPolicy", "None")
    return text + (f" stop={stop}" if stop != "None" else "")
