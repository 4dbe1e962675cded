"""Burn-in through a workload manager: one job on a drained node runs the suite there.

The job's results reach the control plane the way any node's do (``node check --report``);
the launcher only starts it. Beside `scheduler.pairs.PairLauncher`, the other kind of job
the control plane starts on its own nodes.
"""

from __future__ import annotations

from typing import Protocol


class BurnInLauncher(Protocol):
    """Starts a burn-in job on a node of a workload manager (Slurm, Kubernetes)."""

    def launch(self, node: str, gpus: int) -> str:
        """Start the job on ``node`` using its ``gpus`` GPUs; return the job's name."""
        ...
