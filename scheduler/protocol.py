"""The one protocol every workload manager backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

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
    """What a drain could not do at once (a backend that only marks the node returns None)."""

    blocked: tuple[str, ...] = ()  # "namespace/pod: why", work left running on the node


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

    def jobs_on(self, node: str) -> list[JobInfo]: ...

    def allocations(self) -> list[Allocation]: ...
