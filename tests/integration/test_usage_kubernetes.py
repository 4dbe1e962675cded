"""GPU usage from a real Kubernetes API server (testenv/kubernetes, kwok's GPU nodes): pods
with GPU requests in a tenant's namespace, bound to nodes, read by KubernetesUsage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from compute.runtime import Runtime
from compute.services.usage import read_usage, summarise
from compute.tenants.spec import parse_tenant
from scheduler.kubernetes import KubeClient
from scheduler.kubernetes.usage import KubernetesUsage
from tests.integration.conftest import KubeCluster, runtime_over

pytestmark = pytest.mark.integration

POOLS = {p: {"computectl.io/pool": p} for p in ("training", "inference")}


@pytest.fixture
def tenant(kube: KubeCluster, api: Any, tmp_path: Path) -> Iterator[str]:
    """A tenant with GPUs in both pools; its namespace removed afterwards."""
    name = f"ku{uuid.uuid4().hex[:6]}"
    rt: Runtime = runtime_over(kube.computectl_toml, tmp_path)
    spec = parse_tenant(
        {
            "name": name,
            "users": ["alice"],
            "quotas": [{"pool": "training", "gpus": 16}, {"pool": "inference", "gpus": 8}],
        },
        rt.settings.effective_pools,
    )
    rt.tenants.apply(spec, actor="operator:test")
    rt.close()
    yield name
    ns = f"tenant-{name}"
    try:
        api.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
        api.delete_namespace(ns, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def container(name: str, gpus: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "registry.k8s.io/pause:3.10",
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
        **extra,
    }


def pod_spec(pool: str, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"nodeSelector": {"computectl.io/pool": pool}, "containers": containers, **extra}


def test_running_pods_count_their_effective_gpus_on_their_nodes(
    kube: KubeCluster, api: Any, tenant: str
) -> None:
    ns = f"tenant-{tenant}"
    since = datetime.now(UTC) - timedelta(seconds=2)
    api.create_namespaced_pod(
        ns, {"metadata": {"name": "train"}, "spec": pod_spec("training", [container("m", 4)])}
    )
    # Effective request: max(init 3, containers 1 + 1) = 3.
    api.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "serve"},
            "spec": pod_spec(
                "inference",
                [container("a", 1), container("b", 1)],
                initContainers=[container("warm", 3)],
            ),
        },
    )
    batch = client.BatchV1Api(api.api_client)
    template = pod_spec("training", [container("m", 2)], restartPolicy="Never")
    job: Any = {"metadata": {"name": "done"}, "spec": {"template": {"spec": template}}}
    batch.create_namespaced_job(ns, job)

    def phases() -> dict[str, str]:
        pods = api.list_namespaced_pod(ns).items
        return {p.metadata.name.split("-")[0]: p.status.phase for p in pods}

    kube.wait(
        "kwok to run two pods and complete the job's",
        lambda: phases() == {"train": "Running", "serve": "Running", "done": "Succeeded"},
        60,
    )
    until = datetime.now(UTC) + timedelta(seconds=1)
    source = KubernetesUsage(KubeClient(kube.kubeconfig), POOLS)
    read = source.usage(since, until, tenant)
    assert read.skipped == 0
    got = sorted((r.pool, r.gpu_model, r.gpus, r.end == until) for r in read.records)
    assert got == [
        ("inference", "H100-SXM", 3, True),
        ("training", "H100-SXM", 2, False),  # ended: at its container's finishedAt
        ("training", "H100-SXM", 4, True),
    ]
    assert all(r.tenant == tenant and since <= r.start <= until for r in read.records)
    # Every tenant's pods at once: these are among them; another tenant sees none.
    assert len(source.usage(since, until).records) >= 3
    assert source.usage(since, until, "nobody-here").records == []

    tagged, notes = read_usage([(source, {"training", "inference"})], tenant, since, until)
    hours = sum(r.gpu_hours for r in summarise(tagged, since, until))
    expected = sum(r.gpu_seconds(since, until) for r in read.records) / 3600
    assert abs(hours - expected) < 1e-9 and hours > 0
    assert notes and "deleted" in notes[0]
