"""The Kubernetes backend: cordon, computectl's taint and the Eviction API (official client);
tenants as namespaces (`KubernetesTenants`)."""

from scheduler.kubernetes.backend import KubernetesWorkloadManager
from scheduler.kubernetes.client import KubeClient, KubeDriver
from scheduler.kubernetes.tenants import KubernetesTenants

__all__ = ["KubeClient", "KubeDriver", "KubernetesTenants", "KubernetesWorkloadManager"]
