"""The WorkloadManager protocol over a real Kubernetes cluster: cordon + taint + evict.

A drain is what an operator would do with kubectl cordon / taint / drain,
made safe to run twice and to undo exactly: computectl marks what it adds
(a taint key and annotations of its own) and resume removes only that.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.errors import Conflict, InvalidRequest, NotFound, SchedulerError
from scheduler.kubernetes.client import KubeClient
from scheduler.kubernetes.driver import KubeDriver
from scheduler.kubernetes.objects import (
    TENANT_LABEL,
    drain_patch,
    drained_as,
    is_active,
    labels_of,
    matches,
    meta,
    node_status,
    pod_gpus,
    pod_id,
    resume_patch,
    selector,
)
from scheduler.kubernetes.work import evicted_work, pods_work
from scheduler.protocol import (
    Allocation,
    BatchResult,
    DrainMode,
    DrainReport,
    JobInfo,
    NodeStatus,
)
from scheduler.topology import CLIQUE_LABEL, clique_domain, note_unbelieved, topology_name
from scheduler.work import WorkRead

_log = logging.getLogger("computectl.scheduler.kubernetes")
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
# What `kubectl delete pod` gives a pod by default; "down" ends work, but politely.
DOWN_GRACE_SECONDS = 30
# Read-modify-write of a node: another writer (kubelet, an operator) can win the race.
_CONFLICT_RETRIES = 5
_ACTIVE = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True, slots=True)
class TopologyLabels:
    """The node labels whose values name a node's rack and leaf switch ("": none)."""

    rack: str
    switch: str


class KubernetesWorkloadManager:
    """One cluster; ``pools`` maps computectl pool → node label selector.

    A node matching several pools' selectors belongs to the first of them in
    ``pools``; nodes matching none are not computectl's and are not listed.
    ``topology`` maps pool → the node labels naming a node's rack and leaf switch.
    """

    kind = "kubernetes"

    def __init__(
        self,
        client: KubeDriver,
        pools: Mapping[str, Mapping[str, str]],
        gpu_resource: str = DEFAULT_GPU_RESOURCE,
        topology: Mapping[str, TopologyLabels] | None = None,
    ) -> None:
        if not pools:
            raise ValueError("a Kubernetes backend needs at least one pool → node selector")
        empty = [p for p, sel in pools.items() if not sel]
        if empty:
            # An empty selector would claim every node of the cluster.
            raise ValueError(f"pool(s) {', '.join(empty)} need a non-empty node selector")
        self.client = client
        self.pools = {p: dict(sel) for p, sel in pools.items()}
        self.gpu_resource = gpu_resource
        self.topology = dict(topology or {})

    def close(self) -> None:
        self.client.close()

    @classmethod
    def create(
        cls,
        pools: Mapping[str, Mapping[str, str]],
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        gpu_resource: str = DEFAULT_GPU_RESOURCE,
        timeout_seconds: float = 30.0,
        topology: Mapping[str, TopologyLabels] | None = None,
    ) -> KubernetesWorkloadManager:
        """A backend on the official client (the settings' ``[pools.kubernetes]`` table)."""
        client = KubeClient(kubeconfig, context, timeout_seconds)
        return cls(client, pools, gpu_resource, topology)

    # -- reading -------------------------------------------------------------------------------

    def list_nodes(self) -> list[NodeStatus]:
        nodes = self._pool_nodes()
        gpus: dict[str, int] = defaultdict(int)
        jobs: dict[str, int] = defaultdict(int)
        for pod, n in self._gpu_pods():
            node = pod["spec"]["nodeName"]
            gpus[node] += n
            jobs[node] += 1
        unbelieved: list[tuple[str, str]] = []
        out = [
            self._status(raw, pool, gpus[name], jobs[name], unbelieved)
            for name, (raw, pool) in sorted(nodes.items())
        ]
        note_unbelieved(_log, f"{CLIQUE_LABEL} labels", unbelieved)
        return out

    def node(self, name: str) -> NodeStatus:
        """One node as Kubernetes reports it; NotFound if it is in none of the pools."""
        raw = self.client.get_node(name)
        pool = self._require_pool(raw)
        pods = self._gpu_pods(name)
        return self._status(raw, pool, sum(n for _, n in pods), len(pods))

    def jobs_on(self, node: str) -> list[JobInfo]:
        self._require_pool(self.client.get_node(node))
        pods = self._gpu_pods(node)
        tenant = self._tenants()
        return [
            JobInfo(
                id=pod_id(pod),
                tenant=tenant(pod),
                gpus=n,
                state=str((pod.get("status") or {}).get("phase", "Unknown")).lower(),
            )
            for pod, n in pods
        ]

    def allocations(self) -> list[Allocation]:
        pool_of = {name: pool for name, (_, pool) in self._pool_nodes().items()}
        tenant = self._tenants()
        return [
            Allocation(
                tenant=tenant(pod),
                pool=pool_of[node],
                node=node,
                gpus=n,
                job=pod_id(pod),
            )
            for pod, n in self._gpu_pods()
            if (node := pod["spec"]["nodeName"]) in pool_of
        ]

    # -- what ran where (scheduler.work.WorkHistory) ---------------------------------------

    def work_on(self, node: str, since: datetime, until: datetime) -> WorkRead:
        """The GPU pods bound to ``node`` that ran in the window, of those the API still
        holds: the pods a drain evicted are in its report (`DrainReport.evicted`), which the
        control plane keeps with the drain, since the API forgets a pod once it is gone."""
        pods = self.client.list_pods(f"spec.nodeName={node}")
        return pods_work(pods, self.gpu_resource, since, until, node=node)

    def failed_work(self, since: datetime, until: datetime) -> WorkRead:
        """GPU pods that ended Failed in the window, on the node they were bound to."""
        pods = self.client.list_pods("status.phase=Failed")
        return pods_work(pods, self.gpu_resource, since, until, failed_only=True)

    # -- acting --------------------------------------------------------------------------------

    def drain(self, node: str, reason: str, mode: DrainMode = "drain") -> DrainReport:
        """Cordon and taint ``node``, then evict its GPU pods (``down``: delete them).

        Evictions go through the Eviction API, so PodDisruptionBudgets hold: a pod
        whose budget forbids it keeps running and is named in the report. Calling it
        again is how a blocked eviction is retried (the sweep does, for a draining
        node): a node already marked so is not written again, and only pods still
        there and not already going are evicted. The report names the GPU pods this
        call evicted or deleted, as they were.
        """
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidRequest("Kubernetes drains need a reason (it goes in an annotation)")
        self._update_node(
            node,
            lambda raw: None if drained_as(raw, reason, mode) else drain_patch(raw, reason, mode),
        )
        blocked, gone = [], []
        for pod, _ in self._gpu_pods(node):
            namespace, name = meta(pod).get("namespace", ""), meta(pod).get("name", "")
            if meta(pod).get("deletionTimestamp"):
                continue  # evicted or deleted already, within its grace period: not blocked
            if mode == "down":
                self.client.delete_pod(namespace, name, DOWN_GRACE_SECONDS)
            elif (why := self.client.evict_pod(namespace, name)) is not None:
                blocked.append(f"{namespace}/{name}: {why}")
                continue
            gone.append(pod)
        evicted = evicted_work(gone, self.gpu_resource, datetime.now(UTC))
        return DrainReport(tuple(blocked), tuple(evicted))

    def resume(self, node: str) -> None:
        """Remove computectl's taint and annotations; uncordon only if computectl cordoned."""
        self._update_node(node, resume_patch)

    def drain_many(
        self, nodes: Sequence[str], reason: str, mode: DrainMode = "drain"
    ) -> BatchResult:
        """``drain`` node by node (each is its own object in the API); one failing stops none."""
        reports: dict[str, DrainReport] = {}
        failed: dict[str, SchedulerError] = {}
        for node in nodes:
            try:
                report = self.drain(node, reason, mode)
            except SchedulerError as exc:
                failed[node] = exc
                continue
            if report.blocked or report.evicted:
                reports[node] = report
        return BatchResult.of(nodes, failed, reports)

    def resume_many(self, nodes: Sequence[str]) -> BatchResult:
        failed: dict[str, SchedulerError] = {}
        for node in nodes:
            try:
                self.resume(node)
            except SchedulerError as exc:
                failed[node] = exc
        return BatchResult.of(nodes, failed)

    # -- helpers -------------------------------------------------------------------------------

    def _status(
        self,
        raw: Mapping[str, Any],
        pool: str,
        gpus: int,
        jobs: int,
        unbelieved: list[tuple[str, str]] | None = None,
    ) -> NodeStatus:
        labels = labels_of(raw)
        names = self.topology.get(pool)
        rack = topology_name(labels.get(names.rack)) if names and names.rack else ""
        switch = topology_name(labels.get(names.switch)) if names and names.switch else ""
        clique = labels.get(CLIQUE_LABEL)
        domain = clique_domain(clique)
        status = node_status(raw, pool, self.gpu_resource, gpus, jobs)
        if clique is not None and not domain and unbelieved is not None:
            unbelieved.append((status.name, str(clique)))
        if rack or switch or domain:
            return replace(status, rack=rack, switch=switch, nvlink_domain=domain)
        return status

    def _pool_of(self, raw: Mapping[str, Any]) -> str | None:
        labels = labels_of(raw)
        return next((p for p, sel in self.pools.items() if matches(labels, sel)), None)

    def _require_pool(self, raw: Mapping[str, Any]) -> str:
        pool = self._pool_of(raw)
        if pool is None:
            raise NotFound(
                f"node {meta(raw).get('name')} matches none of the node selectors of pools "
                f"{', '.join(self.pools)}"
            )
        return pool

    def _pool_nodes(self) -> dict[str, tuple[dict[str, Any], str]]:
        """name → (node, pool), one filtered list per distinct selector."""
        out: dict[str, tuple[dict[str, Any], str]] = {}
        for wanted in {selector(sel) for sel in self.pools.values()}:
            for raw in self.client.list_nodes(wanted):
                name = str(meta(raw).get("name", ""))
                # A node several selectors match belongs to the first such pool.
                if name and name not in out and (pool := self._pool_of(raw)) is not None:
                    out[name] = (raw, pool)
        return out

    def _gpu_pods(self, node: str | None = None) -> list[tuple[dict[str, Any], int]]:
        """Bound, not terminated pods holding GPUs, with their GPU count (one API list)."""
        field = _ACTIVE + (f",spec.nodeName={node}" if node else "")
        out = []
        for pod in self.client.list_pods(field):
            if not (pod.get("spec") or {}).get("nodeName") or not is_active(pod):
                continue
            n = pod_gpus(pod, self.gpu_resource)
            if n > 0:
                out.append((pod, n))
        return out

    def _tenants(self) -> Callable[[Mapping[str, Any]], str]:
        """pod → tenant: its namespace's computectl.io/tenant label, else the namespace."""
        labelled = {
            str(meta(ns).get("name")): labels_of(ns)[TENANT_LABEL]
            for ns in self.client.list_namespaces(TENANT_LABEL)
        }

        def tenant(pod: Mapping[str, Any]) -> str:
            namespace = str(meta(pod).get("namespace", ""))
            return labelled.get(namespace, namespace)

        return tenant

    def _update_node(
        self, name: str, make_patch: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> None:
        """Read, patch with the read's resourceVersion, and start over if someone wrote between."""
        for attempt in range(_CONFLICT_RETRIES):
            raw = self.client.get_node(name)
            self._require_pool(raw)
            patch = make_patch(raw)
            if patch is None:
                return
            try:
                self.client.patch_node(name, patch)
                return
            except Conflict:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
