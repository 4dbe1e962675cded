"""The pair test's Kubernetes objects: the Job of one pair, and what it needs of the nodes
(see scheduler.kubernetes.pairs)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.kubernetes.burnin import stamped_name
from scheduler.kubernetes.objects import meta, quantity
from scheduler.pairs import PairRun, probe_argv

NAME_PREFIX = "computectl-pair-"
APP_NAME = "computectl-pair"
PAIR_LABEL = "computectl.io/pair"
# One value per round (its stamp), on Jobs and pods: one list request polls a whole round.
ROUND_LABEL = "computectl.io/pair-round"
CONTAINER = "probe"
SERVICE_ACCOUNT = "computectl-node-check"
TERMINATION_LOG = "/dev/termination-log"
# The Job's own deadline only matters when the control plane died while waiting: normally
# the launcher gives up first, sees what is pending, and deletes the Job itself.
DEADLINE_MARGIN_SECONDS = 30
TTL_SECONDS = 86400
# Job conditions that end it (a "FailureTarget" or "SuccessCriteriaMet" alone does not:
# pods may still be terminating).
COMPLETE, FAILED, GONE = "Complete", "Failed", "Gone"
_HOSTNAME = "kubernetes.io/hostname"


def pair_job_name(nodes: Sequence[str], stamp: int) -> str:
    """``computectl-pair-<a>-<b>-<stamp hex>``; a cut name keeps a hash of both node names,
    since the pairs of one round share the stamp."""
    return stamped_name(NAME_PREFIX, "-".join(nodes), stamp, digest=True)


def node_address(node: Mapping[str, Any]) -> str:
    """The node's InternalIP, else its name."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP" and addr.get("address"):
            return str(addr["address"])
    return str(meta(node).get("name", ""))


def node_gpus(node: Mapping[str, Any], gpu_resource: str) -> int:
    """The node's capacity of the GPU resource (0 when it has none)."""
    value = ((node.get("status") or {}).get("capacity") or {}).get(gpu_resource)
    return quantity(value) if value is not None else 0


def pair_job(
    run: PairRun,
    name: str,
    *,
    image: str,
    namespace: str,
    gpus: int,
    timeout_seconds: float,
    addresses: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    gpu_resource: str = "nvidia.com/gpu",
    command: Sequence[str] = ("computectl",),
    round_id: str = "",
) -> dict[str, Any]:
    """The Job manifest of one pair (pure: no API call)."""
    argv = probe_argv(command, run, dict(addresses or {}), extra_args)
    argv += ["--node", "$(NODE_NAME)", "--result-file", TERMINATION_LOG]
    labels = {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/part-of": "computectl",
        PAIR_LABEL: name,
    }
    if round_id:
        labels[ROUND_LABEL] = round_id
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": argv[: len(command)],
        "args": argv[len(command) :],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if gpus > 0:
        container["resources"] = {
            "requests": {gpu_resource: str(gpus)},
            "limits": {gpu_resource: str(gpus)},
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            # One side failing fails the pair; a retry would meet a peer that has given up.
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, math.ceil(timeout_seconds)) + DEADLINE_MARGIN_SECONDS,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "hostNetwork": True,
                    # Keeps cluster DNS working for a pod on the host's network.
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                # The node's name itself (a hostname label need not equal
                                # it); a name field takes one value, and terms are ORed.
                                "nodeSelectorTerms": [
                                    {
                                        "matchFields": [
                                            {
                                                "key": "metadata.name",
                                                "operator": "In",
                                                "values": [n],
                                            }
                                        ]
                                    }
                                    for n in run.nodes
                                ]
                            }
                        },
                        # Both pods could fit on one node of the two; the pair must span both.
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {PAIR_LABEL: name}},
                                    "topologyKey": _HOSTNAME,
                                }
                            ]
                        },
                    },
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                    "containers": [container],
                },
            },
        },
    }
