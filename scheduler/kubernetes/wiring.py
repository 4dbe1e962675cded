"""The builder that wires Kubernetes pools to the control plane."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scheduler.kubernetes.backend import KubernetesWorkloadManager, TopologyLabels
from scheduler.kubernetes.burnin import KubernetesBurnIn
from scheduler.kubernetes.pairs import KubernetesPairs
from scheduler.kubernetes.settings import KubernetesSettings
from scheduler.kubernetes.tenants import KubernetesTenants
from scheduler.kubernetes.usage import KubernetesUsage
from scheduler.wiring import PoolWiring


def build(pools: Sequence[tuple[str, KubernetesSettings]]) -> dict[str, PoolWiring]:
    """One backend per cluster credential (kubeconfig, context) and GPU resource name, with
    its tenants and usage; the burn-in and pair launchers of the pools that name a burn-in
    image."""
    clusters: dict[tuple[Path | None, str | None, str], list[tuple[str, KubernetesSettings]]]
    clusters = {}
    for name, k in pools:
        clusters.setdefault((k.kubeconfig, k.context, k.gpu_resource), []).append((name, k))
    out: dict[str, PoolWiring] = {}
    for (kubeconfig, context, gpu_resource), members in clusters.items():
        backend = KubernetesWorkloadManager.create(
            {name: k.selector_of(name) for name, k in members},
            kubeconfig=kubeconfig,
            context=context,
            gpu_resource=gpu_resource,
            # Pools of one cluster share its client: the most patient setting wins.
            timeout_seconds=max(k.request_timeout_seconds for _, k in members),
            topology={name: TopologyLabels(k.rack_label, k.switch_label) for name, k in members},
        )
        # One namespace per tenant in the same cluster, over the same client.
        queues = any(k.queues == "kueue" for _, k in members)
        tenants = KubernetesTenants(backend.client, backend.pools, gpu_resource, queues=queues)
        usage = KubernetesUsage(backend.client, backend.pools, gpu_resource)
        for name, k in members:
            if not k.burn_in_image:
                out[name] = PoolWiring(backend, tenants, usage=usage)
                continue
            burn_in = KubernetesBurnIn(
                backend.client,
                k.burn_in_image,
                k.burn_in_namespace,
                gpu_resource,
                audience=k.token_audience,
            )
            # The pair probe ships in the node-check image that runs burn-in.
            pairs = KubernetesPairs(
                backend.client, k.burn_in_image, k.burn_in_namespace, k.gpu_resource
            )
            out[name] = PoolWiring(backend, tenants, burn_in, pairs, usage)
    return out
