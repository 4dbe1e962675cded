"""A Kubernetes pool's settings: its table in the control plane's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# namespace/name: a DNS label, then a DNS subdomain (what Kubernetes allows for each).
_SERVICE_ACCOUNT = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$"


class KubernetesSettings(BaseModel):
    """Table [pools.kubernetes] (the control plane adds its strict checks of every value)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kubeconfig: Path | None = Field(
        None,
        description="kubeconfig of the cluster (default: the in-cluster ServiceAccount when "
        "computectl runs in a pod, else $KUBECONFIG or ~/.kube/config).",
    )
    context: str | None = Field(
        None, description="kubeconfig context to use (default: the kubeconfig's current one)."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Labels whose nodes form the pool (default: computectl.io/pool = the "
        "pool's name).",
    )
    gpu_resource: str = Field(
        "nvidia.com/gpu", min_length=1, description="Extended resource the GPUs are counted as."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="An API request that takes longer counts as Kubernetes unreachable."
    )
    rack_label: str = Field(
        "topology.computectl.io/rack",
        description='Node label whose value names the node\'s rack ("": none).',
    )
    switch_label: str = Field(
        "topology.computectl.io/switch",
        description='Node label whose value names the node\'s leaf switch ("": none).',
    )
    burn_in_image: str | None = Field(
        None,
        description="Image with computectl for the burn-in Job computectl starts on a drained "
        "node (see playbooks/roles/kubernetes_health/files/burnin-job.yaml; default: none, "
        "so drained nodes wait for burn-in results posted from the node itself).",
    )
    burn_in_namespace: str = Field(
        "computectl-system",
        description="Namespace of the burn-in Jobs (and of the node check). The Jobs run as "
        "its ServiceAccount computectl-node-check: for their results to be taken, that is "
        "node_agent_service_account.",
    )
    node_agent_service_account: str = Field(
        "computectl-system/computectl-node-check",
        pattern=_SERVICE_ACCOUNT,
        description="namespace/name of the ServiceAccount the node check's pods run as (see "
        "the kubernetes_health role's node-check DaemonSet): a pod-bound token of it, "
        "verified through the API server's TokenReview, may report health for the node its "
        'pod runs on and no other ("": no node identities from this cluster).',
    )
    token_audience: str = Field(
        "computectl",
        min_length=1,
        max_length=253,
        pattern=r"^[\x21-\x7e]+$",
        description="Audience the node check's projected ServiceAccount token is issued for; "
        "a token for another audience (the API server's own) is refused.",
    )

    queues: Literal["none", "kueue"] = Field(
        "none",
        description='"kueue": tenants\' GPU quotas per pool and GPU model through Kueue (a '
        "ResourceFlavor per pool, a ClusterQueue per tenant in one cohort, a LocalQueue in its "
        "namespace; docs/kubernetes-tenants.md says how Kueue must be configured); "
        '"none": one summed ResourceQuota per tenant, which does not split it between pools.',
    )

    def selector_of(self, pool: str) -> dict[str, str]:
        return self.node_selector or {"computectl.io/pool": pool}
