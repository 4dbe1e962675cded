"""The Kubernetes pair launcher's pure parts: the Job's name and manifest, the nodes' addresses
and GPUs, and the outcome read from the Job and its pods."""

from __future__ import annotations

import re
from typing import Any

import pytest

from scheduler.kubernetes import burnin
from scheduler.kubernetes import pair_jobs as kj
from scheduler.kubernetes import pair_outcomes as ko
from scheduler.pairs import PairRun

RUN = PairRun(("gpu-001", "gpu-002"), 29501)
NAME = "computectl-pair-gpu-001-gpu-002-19a9b2c3d4e"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
RESULT = '{"kind":"computectl.pair","nodes":["gpu-001","gpu-002"],"busbw_gbps":12.5}'


def job(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "image": "registry.example.com/computectl:1",
        "namespace": "computectl-system",
        "gpus": 8,
        "timeout_seconds": 300,
        "addresses": {"gpu-001": "10.0.0.1", "gpu-002": "10.0.0.2"},
        "extra_args": ["--bytes", "1048576"],
        "round_id": "19a9b2c3d4e",
    }
    return kj.pair_job(RUN, NAME, **{**args, **kw})


def pod(
    name: str,
    node: str | None,
    phase: str,
    *,
    message: str = "",
    exit_code: int | None = None,
    reason: str = "",
    scheduled: dict[str, str] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if exit_code is not None:
        terminated = {"exitCode": exit_code, "reason": reason or "Completed", "message": message}
        status["containerStatuses"] = [{"name": "probe", "state": {"terminated": terminated}}]
    if scheduled is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", **scheduled}]
    return {
        "metadata": {"name": name, "labels": {kj.PAIR_LABEL: NAME}},
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


# -- the name ---------------------------------------------------------------------------------


def test_the_name_carries_both_nodes_and_the_stamp() -> None:
    assert kj.pair_job_name(("gpu-001", "gpu-002"), 0x19A9B2C3D4E) == NAME


def test_a_long_name_is_a_dns_label_and_pairs_differing_past_the_cut_stay_apart() -> None:
    a = "prod-us-east-1-h100-cluster-a.rack07.example.com"
    first = kj.pair_job_name((a + "-node-0001", "Node_2"), 0x19A9B2C3D4E)
    second = kj.pair_job_name((a + "-node-0003", "Node_4"), 0x19A9B2C3D4E)
    for name in (first, second):
        assert len(name) <= 63 and DNS_LABEL.match(name), name
        assert name.startswith("computectl-pair-prod-us-east-1") and name.endswith("-19a9b2c3d4e")
    assert first != second


def test_burn_in_names_are_what_they_were() -> None:
    long = "node." + "x" * 80
    assert burnin.job_name("Gpu_7", 0x1F) == "computectl-burnin-gpu-7-1f"
    assert burnin.job_name(long, 0x1F) == ("computectl-burnin-node-" + "x" * 80)[:60] + "-1f"


# -- the manifest -----------------------------------------------------------------------------


def test_the_job_runs_two_pods_once_with_a_deadline_and_a_ttl() -> None:
    j = job()
    assert (j["apiVersion"], j["kind"]) == ("batch/v1", "Job")
    assert j["metadata"]["name"] == NAME and j["metadata"]["namespace"] == "computectl-system"
    assert j["metadata"]["labels"] == {
        "app.kubernetes.io/name": "computectl-pair",
        "app.kubernetes.io/part-of": "computectl",
        "computectl.io/pair": NAME,
        "computectl.io/pair-round": "19a9b2c3d4e",
    }
    spec = j["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (2, 2, 0)
    assert spec["activeDeadlineSeconds"] == 300 + kj.DEADLINE_MARGIN_SECONDS
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert spec["template"]["metadata"]["labels"] == j["metadata"]["labels"]
    assert (
        job(timeout_seconds=0.2)["spec"]["activeDeadlineSeconds"] == 1 + kj.DEADLINE_MARGIN_SECONDS
    )


def test_one_pod_on_each_of_the_two_nodes_on_the_host_network() -> None:
    pod_spec = job()["spec"]["template"]["spec"]
    assert pod_spec["hostNetwork"] is True
    assert pod_spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["serviceAccountName"] == "computectl-node-check"
    assert pod_spec["automountServiceAccountToken"] is False
    affinity = pod_spec["affinity"]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]}
        for n in RUN.nodes
    ]
    assert affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {
            "labelSelector": {"matchLabels": {"computectl.io/pair": NAME}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]


def test_the_pods_tolerate_the_gpu_taint_but_not_a_drain() -> None:
    tolerations = job()["spec"]["template"]["spec"]["tolerations"]
    assert tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert "computectl.io/unhealthy" not in str(tolerations)
    assert "unschedulable" not in str(tolerations)


def test_the_container_runs_the_probe_and_leaves_its_result_as_termination_message() -> None:
    (c,) = job(command=("/opt/computectl/bin/computectl",))["spec"]["template"]["spec"][
        "containers"
    ]
    assert c["image"] == "registry.example.com/computectl:1"
    assert c["command"] == ["/opt/computectl/bin/computectl"]
    assert c["args"] == [
        "node",
        "pair-probe",
        "--peers",
        "gpu-001@10.0.0.1,gpu-002@10.0.0.2",
        "--port",
        "29501",
        "--bytes",
        "1048576",
        "--node",
        "$(NODE_NAME)",
        "--result-file",
        "/dev/termination-log",
    ]
    assert c["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["resources"] == {
        "requests": {"nvidia.com/gpu": "8"},
        "limits": {"nvidia.com/gpu": "8"},
    }


def test_gpu_resource_name_and_no_request_without_gpus() -> None:
    (c,) = job(gpu_resource="amd.com/gpu", gpus=4)["spec"]["template"]["spec"]["containers"]
    assert c["resources"]["limits"] == {"amd.com/gpu": "4"}
    (c,) = job(gpus=0)["spec"]["template"]["spec"]["containers"]
    assert "resources" not in c


def test_peers_fall_back_to_node_names_without_addresses() -> None:
    (c,) = job(addresses=None)["spec"]["template"]["spec"]["containers"]
    assert c["args"][3] == "gpu-001@gpu-001,gpu-002@gpu-002"


# -- nodes ------------------------------------------------------------------------------------


def test_node_address_is_the_internal_ip_else_the_name() -> None:
    node = {
        "metadata": {"name": "gpu-001"},
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "gpu-001.example.com"},
                {"type": "InternalIP", "address": "10.0.0.1"},
            ]
        },
    }
    assert kj.node_address(node) == "10.0.0.1"
    assert kj.node_address({"metadata": {"name": "gpu-001"}, "status": {}}) == "gpu-001"


def test_node_gpus_from_capacity() -> None:
    node = {"status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "224"}}}
    assert kj.node_gpus(node, "nvidia.com/gpu") == 8
    assert kj.node_gpus(node, "amd.com/gpu") == 0


# -- the outcome ------------------------------------------------------------------------------


def complete() -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ]
        }
    }


def test_job_state() -> None:
    assert ko.job_state(complete()) == ("Complete", "")
    failed = {
        "status": {
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                },
            ]
        }
    }
    assert ko.job_state(failed) == (
        "Failed",
        "BackoffLimitExceeded: Job has reached the specified backoff limit",
    )
    # Pods may still be terminating: not ended yet.
    target = {"status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}}
    assert ko.job_state(target) == ("", "")
    assert ko.job_state({"status": {}}) == ("", "")
    assert ko.job_state(None) == ("Gone", "")


def test_a_completed_pair_returns_the_messages_first_node_first() -> None:
    pods = [
        pod(f"{NAME}-b", "gpu-002", "Succeeded", exit_code=0),
        pod(f"{NAME}-a", "gpu-001", "Succeeded", exit_code=0, message=RESULT + "\n"),
    ]
    out = ko.pair_outcome(RUN, NAME, "Complete", "", pods, 300)
    assert (out.nodes, out.job, out.output, out.error) == (RUN.nodes, NAME, RESULT, "")
    pods[0] = pod(f"{NAME}-b", "gpu-002", "Succeeded", exit_code=0, message="rank 1 line")
    assert ko.pair_outcome(RUN, NAME, "Complete", "", pods, 300).output == RESULT + "\nrank 1 line"


def test_a_completed_pair_whose_pods_did_not_span_both_nodes_is_an_error() -> None:
    pods = [
        pod(f"{NAME}-a", "gpu-001", "Succeeded", exit_code=0, message=RESULT),
        pod(f"{NAME}-b", "gpu-001", "Succeeded", exit_code=0),
    ]
    out = ko.pair_outcome(RUN, NAME, "Complete", "", pods, 300)
    assert out.error == "job completed, but its pods ran on gpu-001, gpu-001, not once on each node"
    assert out.output == RESULT
    out = ko.pair_outcome(RUN, NAME, "Complete", "", [], 300)
    assert out.error.startswith("job completed, but its pods ran on no node left to read")


def test_a_failed_pair_names_the_pod_node_reason_and_exit_code() -> None:
    pods = [
        pod(f"{NAME}-a", "gpu-001", "Failed", exit_code=1, reason="Error", message="peer lost"),
        pod(f"{NAME}-b", "gpu-002", "Succeeded", exit_code=0),
    ]
    why = "BackoffLimitExceeded: Job has reached the specified backoff limit"
    out = ko.pair_outcome(RUN, NAME, "Failed", why, pods, 300)
    assert out.error == (
        f"job failed (BackoffLimitExceeded): pod {NAME}-a on node gpu-001: Error exit 1"
    )
    assert out.output == "peer lost"  # the log tail FallbackToLogsOnError left


def test_a_failed_pair_without_pod_detail_says_what_the_job_says() -> None:
    why = "DeadlineExceeded: Job was active longer than specified deadline"
    out = ko.pair_outcome(RUN, NAME, "Failed", why, [], 300)
    assert out.error == f"job failed: {why}"
    evicted = pod(f"{NAME}-a", "gpu-001", "Failed")
    evicted["status"].update(reason="Evicted", message="The node was low on resource")
    out = ko.pair_outcome(RUN, NAME, "Failed", why, [evicted], 300)
    assert out.error == (
        f"job failed (DeadlineExceeded): pod {NAME}-a on node gpu-001: "
        "Evicted The node was low on resource"
    )


def test_an_unfinished_pair_says_which_pods_are_pending_and_why() -> None:
    unschedulable = {
        "reason": "Unschedulable",
        "message": "0/8 nodes are available: 1 node(s) didn't match pod anti-affinity rules.",
    }
    pods = [
        pod(f"{NAME}-a", "gpu-001", "Running"),
        pod(f"{NAME}-b", None, "Pending", scheduled=unschedulable),
    ]
    out = ko.pair_outcome(RUN, NAME, "", "", pods, 2.5)
    assert out.error == (
        f"not finished after 2.5 s (pods pending: {NAME}-b [0/8 nodes are available: "
        f"1 node(s) didn't match pod anti-affinity rules.]; pods running: {NAME}-a on gpu-001)"
    )
    assert out.output == ""
    out = ko.pair_outcome(RUN, NAME, "", "", [], 60)
    assert out.error == "not finished after 60 s (no pods created: see the job's events)"


def test_a_job_deleted_underneath() -> None:
    out = ko.pair_outcome(RUN, NAME, "Gone", "", [], 60)
    assert out.error == "job deleted before it finished"


@pytest.mark.parametrize("size", [0, 1, 300])
def test_a_long_scheduler_message_is_cut(size: int) -> None:
    text = "x" * size
    p = pod(f"{NAME}-b", None, "Pending", scheduled={"reason": "Unschedulable", "message": text})
    error = ko.pair_outcome(RUN, NAME, "", "", [p], 1).error
    assert len(error) < 300
    assert ("..." in error) == (size > 200)
