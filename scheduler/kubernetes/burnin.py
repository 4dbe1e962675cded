"""Burn-in on a drained Kubernetes node: a Job pinned to it that runs the node check's burn-in.

The Job is bound with `nodeName` (the node is cordoned, so the scheduler would not place it),
tolerates computectl's drain taint, and requests every GPU so nothing runs beside it. Its
results reach the control plane the way every node check's do (POST .../health, to the URL in
the ConfigMap the kubernetes_health role installs beside the node-check DaemonSet), with the
pod's projected ServiceAccount token for computectl's audience: a credential for this node only
(scheduler/kubernetes/identity.py), not an operator's.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

from scheduler.kubernetes.client import KubeDriver
from scheduler.kubernetes.objects import TAINT_KEY

NAME_PREFIX = "computectl-burnin-"
_MAX_NAME = 63
# Where the node check looks for its projected token (health.node_token.PROJECTED_TOKEN).
TOKEN_DIR = "/var/run/secrets/computectl"
# The kubelet renews it at 80 % of its life; the check reads it again before it reports.
TOKEN_SECONDS = 3600


def job_name(node: str, stamp: int) -> str:
    """One Job per attempt (a retry must not meet the last attempt's finished Job)."""
    return stamped_name(NAME_PREFIX, node, stamp)


def stamped_name(prefix: str, base: str, stamp: int, digest: bool = False) -> str:
    """``<prefix><base>-<stamp hex>`` as a DNS label: ``base`` lowercased, anything else than
    ``[a-z0-9-]`` made a dash, and cut so the whole fits 63 characters (a Job's name is also
    the value of its pods' job-name label). With ``digest``, a cut base ends in a hash of the
    whole one, so bases that differ only past the cut still get different names."""
    suffix = f"-{stamp:x}"
    room = _MAX_NAME - len(prefix) - len(suffix)
    clean = re.sub(r"[^a-z0-9-]", "-", base.lower())
    if digest and len(clean) > room:
        tag = hashlib.sha256(base.encode()).hexdigest()[:8]
        clean = f"{clean[: room - len(tag) - 1].strip('-')}-{tag}"
    return f"{prefix}{clean[:room].strip('-')}{suffix}"


def burn_in_job(
    node: str,
    name: str,
    image: str,
    namespace: str,
    gpus: int,
    gpu_resource: str,
    audience: str = "computectl",
) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "computectl-burnin",
        "app.kubernetes.io/part-of": "computectl",
        "computectl.io/node": node,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,  # a failed burn-in is a result, not something to retry here
            "activeDeadlineSeconds": 7200,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeName": node,
                    "restartPolicy": "Never",
                    "serviceAccountName": "computectl-node-check",
                    "automountServiceAccountToken": False,
                    "tolerations": [
                        {"key": TAINT_KEY, "operator": "Exists"},
                        {
                            "key": "node.kubernetes.io/unschedulable",
                            "operator": "Exists",
                            "effect": "NoSchedule",
                        },
                        {"key": "nvidia.com/gpu", "operator": "Exists"},
                    ],
                    "containers": [
                        {
                            "name": "burnin",
                            "image": image,
                            "command": ["computectl", "node", "check"],
                            "args": [
                                "--suite",
                                "burnin",
                                "--node",
                                node,
                                "--report",
                                "$(COMPUTECTL_URL)",
                            ],
                            "env": [
                                {
                                    "name": "COMPUTECTL_URL",
                                    "valueFrom": {
                                        "configMapKeyRef": {
                                            "name": "computectl-node-check",
                                            "key": "COMPUTECTL_URL",
                                        }
                                    },
                                },
                            ],
                            "resources": {
                                "requests": {gpu_resource: str(gpus)},
                                "limits": {gpu_resource: str(gpus)},
                            },
                            "volumeMounts": [
                                {
                                    "name": "computectl-token",
                                    "mountPath": TOKEN_DIR,
                                    "readOnly": True,
                                }
                            ],
                        }
                    ],
                    "volumes": [token_volume(audience)],
                },
            },
        },
    }


def token_volume(audience: str) -> dict[str, Any]:
    """The pod's ServiceAccount token for ``audience``, bound to the pod, readable by root only."""
    token = {"path": "token", "audience": audience, "expirationSeconds": TOKEN_SECONDS}
    return {
        "name": "computectl-token",
        "projected": {"defaultMode": 0o400, "sources": [{"serviceAccountToken": token}]},
    }


class KubernetesBurnIn:
    """Starts the burn-in Job on a node; `launch` raises the backend's errors."""

    def __init__(
        self,
        client: KubeDriver,
        image: str,
        namespace: str = "computectl-system",
        gpu_resource: str = "nvidia.com/gpu",
        clock: Callable[[], float] = time.time,
        audience: str = "computectl",
    ) -> None:
        self.client = client
        self.image = image
        self.namespace = namespace
        self.gpu_resource = gpu_resource
        self.audience = audience
        self._clock = clock

    def launch(self, node: str, gpus: int) -> str:
        name = job_name(node, int(self._clock()))
        self.client.apply_object(
            burn_in_job(
                node, name, self.image, self.namespace, gpus, self.gpu_resource, self.audience
            )
        )
        return name
