"""The pair test on Kubernetes: one Job per pair, one pod on each of its two nodes.

Each pair of a round becomes a Job of two pods (completions = parallelism = 2) that the
scheduler places one per node: required node affinity on the two node names (the name
field, not a label), and required anti-affinity on the hostname among the pair's own pods.
Each pod takes every GPU of its node (so nothing of a tenant's runs beside it) and uses the
host's network, because the probe's rendezvous is on the first node's address and NCCL
needs the host's fabric.

The result comes back as the pods' termination message: the probe writes its one JSON
line to /dev/termination-log and the kubelet copies it into the pod's status, so no log
access (and no access from the control plane to the nodes) is needed. A probe that fails
without writing it leaves the tail of its log there instead (FallbackToLogsOnError).

The pods tolerate the GPU taint but not computectl's drain taint: the pair test is for
nodes in service; a drained node gets burn-in (scheduler.kubernetes.burnin).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from scheduler.errors import NotFound, PermissionDenied, SchedulerError, Unreachable
from scheduler.kubernetes.burnin import stamped_name
from scheduler.kubernetes.client import KubeDriver
from scheduler.kubernetes.objects import labels_of, meta, quantity
from scheduler.pairs import PairOutcome, PairRun, probe_argv

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
_MAX_DETAIL = 200


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


def job_state(job: Mapping[str, Any] | None) -> tuple[str, str]:
    """(COMPLETE, FAILED or "" while it runs; GONE for no Job), and the ending condition's
    "reason: message"."""
    if job is None:
        return GONE, ""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in (COMPLETE, FAILED) and cond.get("status") == "True":
            why = ": ".join(str(cond[k]) for k in ("reason", "message") if cond.get(k))
            return str(cond["type"]), why
    return "", ""


def pair_outcome(
    run: PairRun,
    name: str,
    state: str,
    why: str,
    pods: Iterable[Mapping[str, Any]],
    timeout_seconds: float,
) -> PairOutcome:
    """What one pair's Job left: the pods' termination messages (the first node's first),
    and an error unless the Job completed. ``state`` is "" for a Job that did not finish
    in time."""
    ordered = sorted(pods, key=lambda p: (_node_of(p) != run.nodes[0], _node_of(p), _name(p)))
    messages = [m for m in (_message(p) for p in ordered) if m]
    output = "\n".join(messages)
    if state == COMPLETE:
        ran = sorted(_node_of(p) for p in ordered if _phase(p) == "Succeeded")
        if ran != sorted(run.nodes):
            # Anti-affinity only sees pods that have not ended: a pod that could not be
            # placed while its twin ran may land on the same node once the twin is done.
            where = ", ".join(ran) or "no node left to read"
            error = f"job completed, but its pods ran on {where}, not once on each node"
            return PairOutcome(run.nodes, name, output, error)
        return PairOutcome(run.nodes, name, output)
    if state == GONE:
        return PairOutcome(run.nodes, name, output, "job deleted before it finished")
    if state == FAILED:
        failed = [f for f in (_failure(p) for p in ordered) if f]
        detail = "; ".join(failed) or why or "no reason given"
        head = f"job failed ({why.split(':', 1)[0]})" if why and failed else "job failed"
        return PairOutcome(run.nodes, name, output, f"{head}: {detail}")
    return PairOutcome(
        run.nodes, name, output, f"not finished after {timeout_seconds:g} s ({_progress(ordered)})"
    )


def _name(pod: Mapping[str, Any]) -> str:
    return str(meta(pod).get("name", ""))


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _node_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _terminated(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            done = (cs.get("state") or {}).get("terminated")
            return done if isinstance(done, dict) else None
    return None


def _message(pod: Mapping[str, Any]) -> str:
    done = _terminated(pod)
    return str(done.get("message") or "").strip() if done else ""


def _failure(pod: Mapping[str, Any]) -> str:
    """ "pod X on node Y: <reason> exit N" for a pod that failed, "" otherwise."""
    where = f"pod {_name(pod)} on node {_node_of(pod) or '(none)'}"
    done = _terminated(pod)
    if done is not None and done.get("exitCode", 0) != 0:
        return f"{where}: {done.get('reason') or 'Error'} exit {done.get('exitCode')}"
    status = pod.get("status") or {}
    if status.get("phase") == "Failed" and done is None:
        # Never got to run its container: evicted, or the node went away.
        return f"{where}: {status.get('reason') or 'Failed'} {_one_line(status.get('message'))}"
    return ""


def _progress(pods: Sequence[Mapping[str, Any]]) -> str:
    """Where an unfinished Job's pods are: pending ones with the scheduler's reason."""
    if not pods:
        return "no pods created: see the job's events"
    pending, running, done = [], [], []
    for pod in pods:
        phase = _phase(pod)
        if phase == "Pending":
            pending.append(f"{_name(pod)}{_why_pending(pod)}")
        elif phase == "Running":
            running.append(f"{_name(pod)} on {_node_of(pod)}")
        else:
            done.append(f"{_name(pod)} on {_node_of(pod)} {phase.lower()}")
    parts = [
        f"pods {what}: {', '.join(names)}"
        for what, names in (("pending", pending), ("running", running), ("ended", done))
        if names
    ]
    return "; ".join(parts)


def _why_pending(pod: Mapping[str, Any]) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            text = _one_line(cond.get("message")) or str(cond.get("reason") or "")
            return f" [{text}]" if text else ""
    if _node_of(pod):
        return f" [on {_node_of(pod)}]"
    return ""


def _one_line(text: Any) -> str:
    words = " ".join(str(text or "").split())
    return words if len(words) <= _MAX_DETAIL else words[: _MAX_DETAIL - 3] + "..."


class KubernetesPairs:
    """PairLauncher on one Kubernetes cluster: Jobs in ``namespace``, which needs the
    ServiceAccount computectl-node-check and must admit host-network pods (see
    deploy/kubernetes/node-check-daemonset.yaml)."""

    def __init__(
        self,
        client: KubeDriver,
        image: str,
        namespace: str = "computectl-system",
        gpu_resource: str = "nvidia.com/gpu",
        command: Sequence[str] = ("computectl",),
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 0.5,
    ) -> None:
        self.client = client
        self.image = image
        self.namespace = namespace
        self.gpu_resource = gpu_resource
        self.command = tuple(command)
        self.poll_seconds = poll_seconds
        self._clock = clock

    def run_pairs(
        self, pairs: Sequence[PairRun], extra_args: Sequence[str], timeout_seconds: float
    ) -> list[PairOutcome]:
        if not pairs:
            return []
        # Milliseconds: a pair retried at once must not meet the Job of its last try.
        stamp = int(self._clock() * 1000)
        round_id = f"{stamp:x}"
        names = [pair_job_name(run.nodes, stamp) for run in pairs]
        nodes = self._nodes({n for run in pairs for n in run.nodes})
        addresses = {n: node_address(obj) for n, obj in nodes.items() if isinstance(obj, dict)}
        refused: dict[str, str] = {}
        created: list[str] = []
        try:
            return self._run_round(
                pairs, names, round_id, nodes, addresses, refused, created, extra_args,
                timeout_seconds,
            )  # fmt: skip
        except BaseException:
            # The API went away, or the caller was interrupted: Jobs left behind would hold
            # every GPU of in-service nodes until their deadline. Best effort: the error
            # that got us here is the one to report.
            for name in created:
                with contextlib.suppress(SchedulerError):
                    self.client.delete_object("Job", name, self.namespace)
            raise

    def _run_round(
        self,
        pairs: Sequence[PairRun],
        names: list[str],
        round_id: str,
        nodes: Mapping[str, dict[str, Any] | str | None],
        addresses: Mapping[str, str],
        refused: dict[str, str],
        created: list[str],
        extra_args: Sequence[str],
        timeout_seconds: float,
    ) -> list[PairOutcome]:
        for run, name in zip(pairs, names, strict=True):
            try:
                gpus = self._gpus(run, nodes)
                job = pair_job(
                    run,
                    name,
                    image=self.image,
                    namespace=self.namespace,
                    gpus=gpus,
                    timeout_seconds=timeout_seconds,
                    addresses=addresses,
                    extra_args=extra_args,
                    gpu_resource=self.gpu_resource,
                    command=self.command,
                    round_id=round_id,
                )
                self.client.create_object(job)
                created.append(name)
            except (Unreachable, PermissionDenied):
                raise
            except SchedulerError as exc:
                refused[name] = f"job not created: {exc}"
        states = self._wait(
            [n for n in names if n not in refused], round_id, time.monotonic() + timeout_seconds
        )
        pods, pods_error = self._pods(round_id)
        outcomes: list[PairOutcome] = []
        for run, name in zip(pairs, names, strict=True):
            if name in refused:
                outcomes.append(PairOutcome(run.nodes, "", "", refused[name]))
                continue
            state, why = states.get(name, ("", ""))
            outcome = pair_outcome(run, name, state, why, pods.get(name, []), timeout_seconds)
            if not state:
                outcome = self._end(outcome)
            if pods_error and not outcome.output:
                extra = f"cannot read its pods: {pods_error}"
                outcome = _with_error(outcome, extra)
            outcomes.append(outcome)
        return outcomes

    def _nodes(self, names: Iterable[str]) -> dict[str, dict[str, Any] | str | None]:
        """Each node's object; None where it does not exist, the error where it cannot be read."""
        found: dict[str, dict[str, Any] | str | None] = {}
        for name in sorted(names):
            try:
                found[name] = self.client.get_node(name)
            except NotFound:
                found[name] = None
            except (Unreachable, PermissionDenied):
                raise
            except SchedulerError as exc:
                found[name] = str(exc)
        return found

    def _gpus(self, run: PairRun, nodes: Mapping[str, dict[str, Any] | str | None]) -> int:
        """GPUs each pod requests: all of a node's (the smaller count where the two differ).
        A node that does not exist counts for nothing: its pod stays pending, which the
        outcome reports."""
        counts = []
        for name in run.nodes:
            obj = nodes.get(name)
            if isinstance(obj, str):
                raise SchedulerError(f"cannot read node {name}: {obj}")
            if obj is None:
                continue
            count = node_gpus(obj, self.gpu_resource)
            if count <= 0:
                # Without GPUs to request the pod would run beside whatever holds the node.
                raise SchedulerError(f"node {name} has no {self.gpu_resource}")
            counts.append(count)
        return min(counts, default=0)

    def _wait(self, names: list[str], round_id: str, deadline: float) -> dict[str, tuple[str, str]]:
        """Poll the round's Jobs until each has ended or the deadline passes."""
        states: dict[str, tuple[str, str]] = {}
        waiting = set(names)
        while waiting:
            try:
                jobs = {
                    str(meta(j).get("name", "")): j
                    for j in self.client.list_objects(
                        "Job", self.namespace, f"{ROUND_LABEL}={round_id}"
                    )
                }
            except (Unreachable, PermissionDenied):
                raise
            except SchedulerError:
                jobs = None  # throttled or a passing refusal: ask again next time
            if jobs is not None:
                for name in sorted(waiting):
                    state = job_state(jobs.get(name))
                    if state[0]:
                        states[name] = state
                        waiting.discard(name)
            left = deadline - time.monotonic()
            if not waiting or left <= 0:
                break
            time.sleep(min(self.poll_seconds, left))
        return states

    def _pods(self, round_id: str) -> tuple[dict[str, list[dict[str, Any]]], str]:
        """The round's pods by pair (Job) name, and why they could not be listed ("" if they
        could)."""
        try:
            pods = self.client.list_objects("Pod", self.namespace, f"{ROUND_LABEL}={round_id}")
        except (Unreachable, PermissionDenied):
            raise
        except SchedulerError as exc:
            return {}, str(exc)
        by_job: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            by_job.setdefault(labels_of(pod).get(PAIR_LABEL, ""), []).append(pod)
        return by_job, ""

    def _end(self, outcome: PairOutcome) -> PairOutcome:
        """Delete a Job that did not finish in time; its pods go with it."""
        try:
            self.client.delete_object("Job", outcome.job, self.namespace)
        except (Unreachable, PermissionDenied):
            raise
        except SchedulerError as exc:
            return _with_error(outcome, f"job not deleted: {exc}")
        return _with_error(outcome, "job deleted")


def _with_error(outcome: PairOutcome, extra: str) -> PairOutcome:
    error = f"{outcome.error}; {extra}" if outcome.error else extra
    return PairOutcome(outcome.nodes, outcome.job, outcome.output, error)
