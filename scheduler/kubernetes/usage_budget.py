"""A tenant whose GPU-hour budget is spent starts no new GPU pods: a second ResourceQuota.

Suspending a tenant sets its quota ``computectl-gpu`` to 0 GPUs (and 0 pods). A spent
budget is a different cause with its own end (the budget raised, the usage reset), and the
tenant's quota is the spec's to set (every apply makes it match the spec again), so the
stop is an object of its own beside it: ``ResourceQuota computectl-gpu-budget`` with
``requests.<gpu resource>: 0``, carrying computectl's ownership marker. The API server's
quota admission checks a new pod against every quota of its namespace, so with this one
there a pod asking for GPUs is refused ("exceeded quota") while pods already running go on,
and pods without GPUs still start. Lifting it deletes this object only, whatever the
tenant's quota says meanwhile.
"""

from __future__ import annotations

from typing import Any

from scheduler.errors import Conflict
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.driver import KubeDriver
from scheduler.kubernetes.objects import meta

BUDGET_QUOTA = "computectl-gpu-budget"
# Says why the object is there, for whoever reads the namespace's quotas.
REASON_LABEL = "computectl.io/reason"
REASON = "gpu-hour-budget-spent"


def stop_quota(tenant: str, gpu_resource: str) -> dict[str, Any]:
    obj = to.base_object("v1", "ResourceQuota", BUDGET_QUOTA, to.namespace_of(tenant), tenant)
    obj["metadata"]["labels"][REASON_LABEL] = REASON
    return obj | {"spec": {"hard": {f"requests.{gpu_resource}": "0"}}}


def stop(client: KubeDriver, tenant: str, gpu_resource: str) -> bool:
    """Make the stop (idempotent: server-side apply). False, and nothing made, where the
    tenant has no namespace of computectl's, or it is being deleted; `Conflict` where an
    object of that name is someone else's."""
    ns = client.get_object("Namespace", to.namespace_of(tenant))
    if ns is None or not to.is_ours(ns) or meta(ns).get("deletionTimestamp"):
        return False
    live = client.get_object("ResourceQuota", BUDGET_QUOTA, to.namespace_of(tenant))
    if live is not None and not to.is_ours(live):
        raise Conflict(
            f"resourcequota {to.namespace_of(tenant)}/{BUDGET_QUOTA} was made outside "
            "computectl; computectl leaves it alone and cannot hold back the tenant's GPU pods"
        )
    client.apply_object(stop_quota(tenant, gpu_resource))
    return True


def allow(client: KubeDriver, tenant: str) -> None:
    """Delete the stop if it is there and ours; nothing else changes."""
    live = client.get_object("ResourceQuota", BUDGET_QUOTA, to.namespace_of(tenant))
    if live is not None and to.is_ours(live):
        client.delete_object("ResourceQuota", BUDGET_QUOTA, to.namespace_of(tenant))


def stopped(client: KubeDriver, tenant: str) -> bool:
    live = client.get_object("ResourceQuota", BUDGET_QUOTA, to.namespace_of(tenant))
    return live is not None and to.is_ours(live)
