"""The Kubernetes backend: cordon, computectl's taint and the Eviction API (official client)."""

from scheduler.kubernetes.backend import KubernetesWorkloadManager
from scheduler.kubernetes.client import KubeClient, KubeDriver

__all__ = ["KubeClient", "KubeDriver", "KubernetesWorkloadManager"]
