"""What ran on a node and when: the work a node's fault hits.

A workload manager that can say which jobs (Slurm) or pods (Kubernetes) held a node over a
window implements `WorkHistory`; the control plane asks it when it drains a node for a
fault, and for work that ended because its node failed (compute/services/job_impact.py).
The backend's answer is outside input: an entry that cannot be read is skipped and
counted, never stopping the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

# End states, in computectl's words (each backend maps its own onto these).
RUNNING = "running"
NODE_FAIL = "node_fail"  # Slurm's NODE_FAIL: the node failed under the job
FAILED = "failed"  # ended in failure (a pod Failed, a Slurm job FAILED)
ENDED = "ended"  # ended otherwise (completed, cancelled, timed out, preempted, ...)


@dataclass(frozen=True, slots=True)
class NodeWork:
    """One job or pod that held ``gpus`` GPUs and ran on ``node`` from ``start``.

    ``gpus`` is the work's whole allocation (a multi-node job loses all of it when one of
    its nodes fails); ``end`` is None while it runs. Times are timezone-aware.
    """

    id: str  # Slurm job id; Kubernetes namespace/pod
    tenant: str  # Slurm account; Kubernetes tenant of the namespace ("" when none)
    node: str
    gpus: int
    start: datetime
    end: datetime | None
    state: str  # RUNNING, NODE_FAIL, FAILED or ENDED

    def gpu_hours_until(self, at: datetime) -> float:
        """GPU-hours from the start to ``at`` (or to its end, if earlier)."""
        stop = at if self.end is None else min(self.end, at)
        return self.gpus * max(0.0, (stop - self.start).total_seconds()) / 3600


@dataclass(frozen=True, slots=True)
class WorkRead:
    """One read's work, and how many entries of the backend's answer were malformed."""

    work: list[NodeWork]
    skipped: int = 0


@runtime_checkable
class WorkHistory(Protocol):
    """A backend's record of which work ran where."""

    def work_on(self, node: str, since: datetime, until: datetime) -> WorkRead:
        """Work that held ``node`` at some time in [since, until] (aware times): running
        now or ended in the window. Raises `scheduler.errors.SchedulerError` when the
        backend cannot be read."""
        ...

    def failed_work(self, since: datetime, until: datetime) -> WorkRead:
        """Work that ended in [since, until] because its node failed (Slurm: NODE_FAIL; a
        pod: Failed), one `NodeWork` per node it ran on."""
        ...
