"""The Kubernetes backend: cordon, computectl's taint and the Eviction API (official client);
tenants as namespaces (`KubernetesTenants`).

Its names load when first used: every command reads ``scheduler.kubernetes.settings`` for
the control plane's settings, and the backend loaded with it cost each one 15 ms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.lazy import names_from

if TYPE_CHECKING:
    from scheduler.kubernetes.backend import KubernetesWorkloadManager
    from scheduler.kubernetes.client import KubeClient, KubeDriver
    from scheduler.kubernetes.tenants import KubernetesTenants

__all__ = ["KubeClient", "KubeDriver", "KubernetesTenants", "KubernetesWorkloadManager"]

__getattr__ = names_from(
    __name__,
    {
        "KubernetesWorkloadManager": "scheduler.kubernetes.backend",
        "KubeClient": "scheduler.kubernetes.client",
        "KubeDriver": "scheduler.kubernetes.client",
        "KubernetesTenants": "scheduler.kubernetes.tenants",
    },
)
