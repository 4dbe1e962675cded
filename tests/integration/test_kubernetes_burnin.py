"""Burn-in on a drained Kubernetes node: computectl starts a Job pinned to it; the node returns
to service only once burn-in results that pass arrive (a real API server, kwok nodes)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from compute.domain import EventKind
from compute.runtime import Runtime
from health.policy import Lifecycle
from health.result import CheckResult, Status, Suite
from tests.integration.conftest import KubeCluster, runtime_over

pytestmark = pytest.mark.integration
NODE = "kwok-gpu-002"
IMAGE = "registry.example.com/computectl/node-check:test"


def runtime_with_burn_in(kube: KubeCluster, data_dir: Path, namespace: str) -> Runtime:
    burn_in = {"burn_in_image": IMAGE, "burn_in_namespace": namespace}
    return runtime_over(kube.computectl_toml, data_dir, burn_in)


def jobs_for(kube: KubeCluster, namespace: str, node: str) -> list[Any]:
    from kubernetes import client, config

    api_client = config.new_client_from_config(
        config_file=str(kube.kubeconfig), persist_config=False
    )
    try:
        return list(
            client.BatchV1Api(api_client)
            .list_namespaced_job(namespace, label_selector=f"computectl.io/node={node}")
            .items
        )
    finally:
        api_client.close()


def test_burn_in_job_on_the_drained_node_and_back_to_service_on_a_pass(
    kube: KubeCluster, api: Any, node_check_ns: str, tmp_path: Path
) -> None:
    rt = runtime_with_burn_in(kube, tmp_path, node_check_ns)
    try:
        rt.nodes.drain(NODE, "suspect NVLink", actor="operator:test")
        rt.nodes.resume(NODE, actor="operator:test")  # through burn-in
        node = rt.store.node(NODE)
        assert node is not None and node.state is Lifecycle.BURN_IN
        jobs = jobs_for(kube, node_check_ns, NODE)
        assert len(jobs) == 1
        pod = jobs[0].spec.template.spec
        assert pod.node_name == NODE
        assert {t.key for t in pod.tolerations} >= {"computectl.io/unhealthy"}
        assert pod.containers[0].resources.requests == {"nvidia.com/gpu": "8"}
        assert pod.containers[0].args[:2] == ["--suite", "burnin"]
        assert api.read_node(NODE).spec.unschedulable  # still cordoned while it burns in

        rt.sweep()  # no results yet: it waits
        assert rt.store.node(NODE).state is Lifecycle.BURN_IN  # type: ignore[union-attr]
        # What the Job's `computectl node check --suite burnin --report` posts:
        summary = CheckResult(
            node=NODE,
            check="burnin",
            version="1",
            status=Status.PASS,
            at=datetime.now(UTC),
            suite=Suite.BURNIN,
        )
        rt.ingest.ingest(NODE, [summary])
        rt.sweep()
        assert rt.store.node(NODE).state is Lifecycle.IN_SERVICE  # type: ignore[union-attr]
        assert not api.read_node(NODE).spec.unschedulable
    finally:
        rt.close()


def test_a_burn_in_job_that_cannot_start_is_an_event_not_a_crash(
    kube: KubeCluster, tmp_path: Path
) -> None:
    rt = runtime_with_burn_in(kube, tmp_path, "no-such-namespace")
    try:
        rt.nodes.drain(NODE, "suspect NVLink", actor="operator:test")
        rt.nodes.resume(NODE, actor="operator:test")
        node = rt.store.node(NODE)
        assert node is not None and node.state is Lifecycle.BURN_IN  # times out, then retries
        failed = rt.store.events(node=NODE, kinds=[EventKind.ACTION_FAILED], limit=1)
        assert failed and "no-such-namespace" in failed[0].reason
    finally:
        rt.close()


def test_a_pool_with_the_node_check_image_runs_pair_tests_as_jobs(
    kube: KubeCluster, api: Any, node_check_ns: str, tmp_path: Path
) -> None:
    """The same image runs the pair test: the service's pair becomes a real Job of two pods on
    the two nodes. kwok completes the pods without running the probe, so no figure comes back:
    the pair is reported without one, never as a made-up pass."""
    from compute.services.fabric import PairTestOptions

    rt = runtime_with_burn_in(kube, tmp_path, node_check_ns)
    try:
        pool = rt.store.node(NODE).pool  # type: ignore[union-attr]
        partner = next(n.name for n in rt.store.nodes(pool=pool) if n.name != NODE)
        run = rt.fabric.pair_test(
            pool, PairTestOptions(timeout_seconds=20), actor="test", names=[NODE, partner]
        )
    finally:
        rt.close()
    (pair,) = run.report.pairs
    assert pair.nodes == (NODE, partner)
    assert pair.job.startswith(f"computectl-pair-{NODE}-{partner}-")
    assert pair.failed and not pair.slow and pair.error
    assert set(run.report.untested) == {NODE, partner}
    assert not run.report.healthy and run.report.suspect_nodes == {}
    from kubernetes import client, config

    api_client = config.new_client_from_config(
        config_file=str(kube.kubeconfig), persist_config=False
    )
    try:
        job = client.BatchV1Api(api_client).read_namespaced_job(pair.job, node_check_ns)
    finally:
        api_client.close()
    assert job.spec.completions == 2
    assert job.spec.template.spec.containers[0].image == IMAGE
    assert job.spec.template.spec.host_network is True
