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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from scheduler.errors import NotFound, PermissionDenied, SchedulerError, Unreachable
from scheduler.kubernetes.client import KubeDriver
from scheduler.kubernetes.objects import labels_of, meta
from scheduler.kubernetes.pair_jobs import (
    PAIR_LABEL,
    ROUND_LABEL,
    node_address,
    node_gpus,
    pair_job,
    pair_job_name,
)
from scheduler.kubernetes.pair_outcomes import job_state, pair_outcome
from scheduler.pairs import PairOutcome, PairRun

__all__ = ["PAIR_LABEL", "KubernetesPairs"]


class KubernetesPairs:
    """PairLauncher on one Kubernetes cluster: Jobs in ``namespace``, which needs the
    ServiceAccount computectl-node-check and must admit host-network pods (see
    playbooks/roles/kubernetes_health/templates/node-check-daemonset.yaml.j2)."""

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
