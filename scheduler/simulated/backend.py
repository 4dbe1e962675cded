"""The WorkloadManager protocol over a simulated cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from scheduler.errors import NotFound, SchedulerError
from scheduler.protocol import Allocation, BatchResult, DrainMode, JobInfo, NodeStatus
from scheduler.simulated.cluster import SimJob, SimulatedCluster
from scheduler.work import NODE_FAIL, RUNNING, NodeWork, WorkRead

ClusterAccess = Callable[[], AbstractContextManager[SimulatedCluster]]


class SimulatedWorkloadManager:
    kind = "simulated"

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access

    def list_nodes(self) -> list[NodeStatus]:
        with self._access() as c:
            out = []
            running = c.jobs_by_node()
            for n in c.nodes.values():
                jobs = running.get(n.name, [])
                used = min(n.gpus, sum(j.gpus_per_node for j in jobs))
                state = (
                    ("drained" if not jobs else "draining")
                    if n.drain
                    else ("allocated" if used == n.gpus else "mixed" if used else "idle")
                )
                out.append(
                    NodeStatus(
                        name=n.name,
                        pool=n.pool,
                        gpu_model=n.model,
                        gpus_total=n.gpus,
                        gpus_allocated=used,
                        drain=n.drain,
                        reason=n.reason,
                        jobs=len(jobs),
                        state=state,
                    )
                )
            return out

    def drain(self, node: str, reason: str, mode: DrainMode = "drain") -> None:
        with self._access() as c:
            if node not in c.nodes:
                raise NotFound(f"node {node} is not in the simulated cluster")
            c.drain(node, reason, mode)

    def resume(self, node: str) -> None:
        with self._access() as c:
            if node not in c.nodes:
                raise NotFound(f"node {node} is not in the simulated cluster")
            c.resume(node)

    def drain_many(
        self, nodes: Sequence[str], reason: str, mode: DrainMode = "drain"
    ) -> BatchResult:
        with self._access() as c:
            failed: dict[str, SchedulerError] = {}
            for node in nodes:
                if node in c.nodes:
                    c.drain(node, reason, mode)
                else:
                    failed[node] = NotFound(f"node {node} is not in the simulated cluster")
            return BatchResult.of(nodes, failed)

    def resume_many(self, nodes: Sequence[str]) -> BatchResult:
        with self._access() as c:
            failed: dict[str, SchedulerError] = {}
            for node in nodes:
                if node in c.nodes:
                    c.resume(node)
                else:
                    failed[node] = NotFound(f"node {node} is not in the simulated cluster")
            return BatchResult.of(nodes, failed)

    def jobs_on(self, node: str) -> list[JobInfo]:
        with self._access() as c:
            if node not in c.nodes:
                raise NotFound(f"node {node} is not in the simulated cluster")
            return [
                JobInfo(id=str(j.id), tenant=j.tenant, gpus=j.gpus_per_node)
                for j in c.running_on(node)
            ]

    def allocations(self) -> list[Allocation]:
        with self._access() as c:
            return [
                Allocation(
                    tenant=j.tenant, pool=j.pool, node=node, gpus=j.gpus_per_node, job=str(j.id)
                )
                for j in c.jobs.values()
                if j.start is not None
                for node in j.nodes
            ]

    # -- what ran where (scheduler.work.WorkHistory) ---------------------------------------
    # Running jobs, and those their node ended (a crash or a drain with ``down``) as this
    # process saw them: the simulation forgets every other ended job.

    def work_on(self, node: str, since: datetime, until: datetime) -> WorkRead:
        with self._access() as c:
            if node not in c.nodes:
                raise NotFound(f"node {node} is not in the simulated cluster")
            running = [_work(j, node, None) for j in c.running_on(node) if j.start is not None]
            ended = [
                _work(j, where, at)
                for j, at, where in c.ended_on_node
                if where == node and since.timestamp() <= at <= until.timestamp()
            ]
        return WorkRead(running + ended)

    def failed_work(self, since: datetime, until: datetime) -> WorkRead:
        """Jobs a node's crash ended in the window, on the node that crashed."""
        with self._access() as c:
            return WorkRead(
                [
                    _work(j, where, at)
                    for j, at, where in c.ended_on_node
                    if since.timestamp() <= at <= until.timestamp()
                ]
            )


def _work(job: SimJob, node: str, ended: float | None) -> NodeWork:
    return NodeWork(
        str(job.id),
        job.tenant,
        node,
        job.gpus_per_node * len(job.nodes),
        datetime.fromtimestamp(job.start or 0.0, UTC),
        datetime.fromtimestamp(ended, UTC) if ended is not None else None,
        RUNNING if ended is None else NODE_FAIL,
    )
