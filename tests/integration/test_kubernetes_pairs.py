"""The pair test's Kubernetes launcher against a real API server, controller-manager and
scheduler (testenv/kubernetes).

Nothing is mocked: the launcher creates its Jobs through `KubeClient`, the Job controller
makes the pods, kube-scheduler places them, and the tests look at what happened with the
official client, as kubectl would.

No container runs, so something must play the kubelet. kwok's nodes are no good for a pair
that completes: kwok marks a Job's pod Succeeded the moment it lands, without a termination
message, and anti-affinity only counts pods that have not ended, so the scheduler may put
the second pod on the first one's node once the first is done
(`test_a_pod_that_reaches_its_twins_node_after_the_twin_ended_is_no_result` shows it;
writing the message after kwok's patch would also race the launcher's read). `Kubelet`
instead registers nodes of its own, which kwok leaves alone (it manages only nodes
annotated kwok.x-k8s.io/node=fake), and does for them what the kubelet does: it marks a pod
placed there Running, and once the pod's twin runs on the other node of its pair (the
probe's rendezvous) ends both through the status subresource, rank 0's container
terminated with the probe's result line as its message. Nothing else writes those pods'
status, so the outcome is deterministic.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.kubernetes import KubeClient
from scheduler.kubernetes.pairs import PAIR_LABEL, KubernetesPairs
from scheduler.pairs import DEFAULT_PORT, PairRun
from tests.integration.conftest import KUBE_NODES, KUBE_TEST_LABEL, KubeCluster

pytestmark = pytest.mark.integration
IMAGE = "registry.example.com/computectl/node-check:test"


def result_line(nodes: Sequence[str]) -> str:
    return json.dumps(
        {"kind": "computectl.pair", "nodes": list(nodes), "busbw_gbps": 12.5},
        separators=(",", ":"),
    )


@pytest.fixture
def client(kube: KubeCluster) -> Iterator[KubeClient]:
    c = KubeClient(kube.kubeconfig)
    yield c
    c.close()


def batch(api: Any) -> Any:
    from kubernetes import client

    return client.BatchV1Api(api.api_client)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    """The kubelet of ``count`` GPU nodes of its own (8 nvidia.com/gpu, InternalIP
    127.0.0.<2+i>), for pods in ``namespace``: see the module's docstring."""

    def __init__(
        self, kube: KubeCluster, namespace: str, count: int, failing: int | None = None
    ) -> None:
        self.kube = kube
        self.failing = failing  # the index of a node whose probe exits 1
        self.namespace = namespace
        tag = uuid.uuid4().hex[:4]
        self.nodes = [f"kt-pair-{tag}-{i}" for i in range(count)]
        self.ips = {n: f"127.0.0.{2 + i}" for i, n in enumerate(self.nodes)}
        self.core = kube.core()  # its own client: it runs beside the launcher
        self.ended: dict[str, str] = {}  # pod → node
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Kubelet:
        # Left over by a test run that was killed: nothing else labels nodes so.
        for old in self.core.list_node(label_selector=f"{KUBE_TEST_LABEL}=true").items:
            self.core.delete_node(old.metadata.name)
        try:
            for name in self.nodes:
                self._register(name)
            self.kube.wait("the nodes to take pods", self._schedulable, 30)
        except BaseException:
            self._delete_nodes()
            raise
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._delete_nodes()
        self.core.api_client.close()

    def _register(self, name: str) -> None:
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        self.core.create_node(
            {"metadata": {"name": name, "labels": {**labels, KUBE_TEST_LABEL: "true"}}}
        )
        resources = {"cpu": "224", "memory": "2Ti", "pods": "110", "nvidia.com/gpu": "8"}
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }
        addresses = [
            {"type": "InternalIP", "address": self.ips[name]},
            {"type": "Hostname", "address": name},
        ]
        self.core.patch_node_status(
            name,
            {
                "status": {
                    "capacity": resources,
                    "allocatable": resources,
                    "conditions": [ready],
                    "addresses": addresses,
                }
            },
        )

    def _schedulable(self) -> bool:
        # The node lifecycle controller lifts the not-ready taint a new node starts with.
        return all(not self.core.read_node(n).spec.taints for n in self.nodes)

    def _delete_nodes(self) -> None:
        from kubernetes.client.exceptions import ApiException

        for name in self.nodes:
            try:
                self.core.delete_node(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # reported by the test, not lost in a thread
                self.errors.append(repr(exc))
                return
            self._stop.wait(0.05)

    def _step(self) -> None:
        pods = [
            p
            for p in self.core.list_namespaced_pod(self.namespace).items
            if p.spec.node_name in self.ips and p.metadata.name not in self.ended
        ]
        for pod in pods:
            if pod.status.phase == "Pending":
                self._status(pod, "Running", {"running": {"startedAt": now()}})
        running: dict[str, list[Any]] = {}
        for pod in pods:
            if pod.status.phase == "Running":
                running.setdefault(pod.metadata.labels[PAIR_LABEL], []).append(pod)
        for twins in running.values():
            if len({p.spec.node_name for p in twins}) == 2:
                for pod in twins:
                    self._end(pod)

    def _end(self, pod: Any) -> None:
        args = pod.spec.containers[0].args
        peers = [p.split("@")[0] for p in args[args.index("--peers") + 1].split(",")]
        # Only rank 0 (the first peer) writes its result line to /dev/termination-log.
        line = result_line(peers) + "\n" if pod.spec.node_name == peers[0] else ""
        state = {"exitCode": 0, "reason": "Completed", "startedAt": now(), "finishedAt": now()}
        phase = "Succeeded"
        if self.failing is not None and pod.spec.node_name == self.nodes[self.failing]:
            # FallbackToLogsOnError: the kubelet leaves the log's tail as the message.
            line = "error: pair test failed: NCCL error: remote process exited\n"
            state.update(exitCode=1, reason="Error")
            phase = "Failed"
        self._status(pod, phase, {"terminated": {**state, "message": line}})
        self.ended[pod.metadata.name] = pod.spec.node_name

    def _status(self, pod: Any, phase: str, state: dict[str, Any]) -> None:
        running = phase == "Running"
        container = {
            "name": pod.spec.containers[0].name,
            "image": pod.spec.containers[0].image,
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
        }
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            self.namespace,
            {"status": {"phase": phase, "containerStatuses": [container]}},
        )


def pods_of(api: Any, namespace: str, job: str) -> list[Any]:
    return list(api.list_namespaced_pod(namespace, label_selector=f"{PAIR_LABEL}={job}").items)


def message(pod: Any) -> str:
    terminated = pod.status.container_statuses[0].state.terminated
    return str(terminated.message or "") if terminated else ""


def test_one_pod_on_each_named_node_and_rank_0s_line_comes_back(
    kube: KubeCluster, api: Any, client: KubeClient, node_check_ns: str
) -> None:
    launcher = KubernetesPairs(client, IMAGE, namespace=node_check_ns, poll_seconds=0.2)
    with Kubelet(kube, node_check_ns, 2) as kubelet:
        a, b = kubelet.nodes
        [out] = launcher.run_pairs([PairRun((a, b), DEFAULT_PORT)], ["--bytes", "1024"], 60)
        assert not kubelet.errors
        assert (out.nodes, out.error, out.output) == ((a, b), "", result_line([a, b]))
        assert out.job.startswith(f"computectl-pair-{a}-{b}-")

        job = batch(api).read_namespaced_job(out.job, node_check_ns)
        assert [c.type for c in job.status.conditions if c.status == "True"][-1] == "Complete"
        assert job.status.succeeded == 2
        pod_spec = job.spec.template.spec
        assert pod_spec.host_network
        assert pod_spec.containers[0].resources.limits == {"nvidia.com/gpu": "8"}
        # The scheduler put exactly one pod on each named node, and nothing anywhere else.
        pods = pods_of(api, node_check_ns, out.job)
        assert sorted(p.spec.node_name for p in pods) == [a, b]
        assert len(api.list_namespaced_pod(node_check_ns).items) == 2
        assert kubelet.ended == {p.metadata.name: p.spec.node_name for p in pods}
        for p in pods:
            args = p.spec.containers[0].args
            peers = f"{a}@127.0.0.2,{b}@127.0.0.3"  # the nodes' InternalIPs
            assert args[:6] == ["node", "pair-probe", "--peers", peers, "--port", str(DEFAULT_PORT)]
            assert args[6:8] == ["--bytes", "1024"]
            assert args[-4:] == ["--node", "$(NODE_NAME)", "--result-file", "/dev/termination-log"]
        assert {p.spec.node_name: message(p).strip() for p in pods} == {
            a: result_line([a, b]),
            b: "",
        }


def test_two_pairs_in_one_round(
    kube: KubeCluster, api: Any, client: KubeClient, node_check_ns: str
) -> None:
    launcher = KubernetesPairs(client, IMAGE, namespace=node_check_ns, poll_seconds=0.2)
    with Kubelet(kube, node_check_ns, 4) as kubelet:
        n = kubelet.nodes
        runs = [PairRun((n[1], n[0]), DEFAULT_PORT), PairRun((n[2], n[3]), DEFAULT_PORT + 1)]
        outcomes = launcher.run_pairs(runs, [], 60)
        assert not kubelet.errors
        assert [(o.nodes, o.error, o.output) for o in outcomes] == [
            (r.nodes, "", result_line(r.nodes)) for r in runs
        ]
        assert len({o.job for o in outcomes}) == 2
        for run, out in zip(runs, outcomes, strict=True):
            pods = pods_of(api, node_check_ns, out.job)
            assert sorted(p.spec.node_name for p in pods) == sorted(run.nodes)
            assert {p.spec.containers[0].args[5] for p in pods} == {str(run.port)}
        assert len(api.list_namespaced_pod(node_check_ns).items) == 4


def test_a_probe_that_fails_fails_its_pair_with_pod_node_and_exit_code(
    kube: KubeCluster, api: Any, client: KubeClient, node_check_ns: str
) -> None:
    launcher = KubernetesPairs(client, IMAGE, namespace=node_check_ns, poll_seconds=0.2)
    with Kubelet(kube, node_check_ns, 2, failing=1) as kubelet:
        a, b = kubelet.nodes
        [out] = launcher.run_pairs([PairRun((a, b), DEFAULT_PORT)], [], 60)
        assert not kubelet.errors
        [failed] = [p for p in pods_of(api, node_check_ns, out.job) if p.spec.node_name == b]
        assert out.error == (
            f"job failed (BackoffLimitExceeded): pod {failed.metadata.name} on node {b}: "
            "Error exit 1"
        )
        assert out.output == (
            f"{result_line([a, b])}\nerror: pair test failed: NCCL error: remote process exited"
        )


def test_a_node_without_the_gpu_resource_gets_no_job(
    client: KubeClient, node_check_ns: str
) -> None:
    # Without GPUs to request, the pod would run beside whatever holds the node's GPUs.
    launcher = KubernetesPairs(client, IMAGE, namespace=node_check_ns, gpu_resource="amd.com/gpu")
    [out] = launcher.run_pairs([PairRun(("kwok-gpu-001", "kwok-gpu-002"), DEFAULT_PORT)], [], 5)
    assert (out.job, out.output) == ("", "")
    assert out.error == "job not created: node kwok-gpu-001 has no amd.com/gpu"


def test_a_pair_that_cannot_be_placed_times_out_and_its_job_is_deleted(
    kube: KubeCluster, api: Any, client: KubeClient, node_check_ns: str
) -> None:
    # Neither node exists: both pods stay Pending (see the next test for one that does).
    gone = (f"kwok-gpu-{KUBE_NODES + 90:03d}", f"kwok-gpu-{KUBE_NODES + 91:03d}")
    launcher = KubernetesPairs(client, IMAGE, namespace=node_check_ns, poll_seconds=0.2)
    started = time.monotonic()
    [out] = launcher.run_pairs([PairRun(gone, DEFAULT_PORT)], [], 3)
    assert 3 <= time.monotonic() - started < 15, out
    assert out.job.startswith(f"computectl-pair-{gone[0]}-{gone[1]}-")
    assert out.error.startswith("not finished after 3 s (pods pending: "), out
    assert out.error.count("didn't satisfy plugin(s) [NodeAffinity]") == 2  # the scheduler's reason
    assert out.error.endswith("; job deleted")

    from kubernetes.client.exceptions import ApiException

    def job_gone() -> bool:
        try:
            batch(api).read_namespaced_job(out.job, node_check_ns)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    kube.wait("the job to be deleted", job_gone, 30)
    kube.wait("its pods to go", lambda: not pods_of(api, node_check_ns, out.job), 60)


def test_a_pod_that_reaches_its_twins_node_after_the_twin_ended_is_no_result(
    kube: KubeCluster, api: Any, client: KubeClient, node_check_ns: str
) -> None:
    """Anti-affinity only counts pods that have not ended. One node of the pair does not
    exist, so one pod waits; kwok ends its twin at once, and the scheduler then places the
    waiting pod on the twin's node. (A real probe would wait for its peer and fail.)"""
    missing = f"kwok-gpu-{KUBE_NODES + 91:03d}"
    launcher = KubernetesPairs(client, IMAGE, namespace=node_check_ns, poll_seconds=0.2)
    [out] = launcher.run_pairs([PairRun(("kwok-gpu-007", missing), DEFAULT_PORT)], [], 30)
    assert out.error == (
        "job completed, but its pods ran on kwok-gpu-007, kwok-gpu-007, not once on each node"
    )
    assert [p.spec.node_name for p in pods_of(api, node_check_ns, out.job)] == ["kwok-gpu-007"] * 2


def test_a_job_the_api_server_refuses_is_that_pairs_outcome(client: KubeClient) -> None:
    launcher = KubernetesPairs(client, IMAGE, namespace="no-such-namespace")
    runs = [
        PairRun(("kwok-gpu-001", "kwok-gpu-002"), DEFAULT_PORT),
        PairRun(("kwok-gpu-003", "kwok-gpu-004"), DEFAULT_PORT + 1),
    ]
    outcomes = launcher.run_pairs(runs, [], 5)
    assert [(o.nodes, o.job, o.output) for o in outcomes] == [(r.nodes, "", "") for r in runs]
    for o in outcomes:
        assert o.error.startswith("job not created: create job no-such-namespace/computectl-pair-")
        assert "not found" in o.error
