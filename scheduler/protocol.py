"""The one protocol every workload manager backend implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from scheduler.errors import SchedulerError
from scheduler.work import NodeWork

DrainMode = Literal["drain", "down"]


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node as its workload manager reports it."""

    name: str
    pool: str
    gpu_model: str
    gpus_total: int
    gpus_allocated: int
    drain: bool  # no new work may start (drained, draining or down)
    reason: str  # the drain reason, "" when not drained
    jobs: int  # jobs running on the node
    responding: bool = True
    state: str = ""  # the backend's own words, for operators
    # Where the node sits, as its workload manager's topology names it ("": unknown):
    # the scopes a shared-cause failure (rack power, a leaf switch) is looked for in.
    rack: str = ""
    switch: str = ""
    # The NVLink domain it lists the node in (scheduler/topology.py: a GB200 node's clique
    # label, a Slurm topology block), "" if none; the node's own NVML report wins over it.
    nvlink_domain: str = ""


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: str
    tenant: str
    gpus: int
    state: str = "running"


@dataclass(frozen=True, slots=True)
class Allocation:
    """GPUs a tenant's running work holds on one node."""

    tenant: str
    pool: str
    node: str
    gpus: int
    job: str


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What a drain could not do at once, and the work it ended (a backend that only marks
    the node returns None)."""

    blocked: tuple[str, ...] = ()  # "namespace/pod: why", work left running on the node
    # The work this drain evicted or deleted, as it was: the workload manager forgets it
    # once it is gone, and which work a fault hit is looked up after the drain, maybe by
    # another replica (compute/services/job_impact.py reads it from the drain's event).
    evicted: tuple[NodeWork, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one action on many nodes did, per node; a node in neither map was done in full,
    with nothing to report."""

    # Drains that left work running, or that report work they ended.
    reports: Mapping[str, DrainReport] = field(default_factory=dict)
    failed: Mapping[str, SchedulerError] = field(default_factory=dict)  # the others were done

    @classmethod
    def of(
        cls,
        nodes: Sequence[str],
        failed: Mapping[str, SchedulerError],
        reports: Mapping[str, DrainReport] | None = None,
    ) -> BatchResult:
        """Node by node results; raises, as the single action would, when none was done."""
        if nodes and all(n in failed for n in nodes):
            raise failed[nodes[0]]
        return cls(reports=dict(reports or {}), failed=dict(failed))


class WorkloadManager(Protocol):
    """Drives one workload manager. Every action is idempotent."""

    kind: str

    def list_nodes(self) -> list[NodeStatus]: ...

    def drain(self, node: str, reason: str, mode: DrainMode = "drain") -> DrainReport | None:
        """No new work on ``node``; with ``down``, running work is ended too.

        Draining a drained node replaces its reason.
        """

    def resume(self, node: str) -> None:
        """Clear the drain. Callers check ownership of the drain first."""

    def drain_many(
        self, nodes: Sequence[str], reason: str, mode: DrainMode = "drain"
    ) -> BatchResult:
        """``drain`` on every node, in as few calls to the workload manager as it allows
        (Slurm: one). Raises only when none was drained; a node that failed alone is in
        ``failed``."""

    def resume_many(self, nodes: Sequence[str]) -> BatchResult:
        """``resume`` on every node, like ``drain_many``."""

    def jobs_on(self, node: str) -> list[JobInfo]: ...

    def allocations(self) -> list[Allocation]: ...
