"""The Slurm backend: sinfo/squeue --json to read, scontrol to drain and resume.

Its names load when first used, as the Kubernetes backend's do (every command reads
``scheduler.slurm.settings``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.lazy import names_from

if TYPE_CHECKING:
    from scheduler.slurm.backend import SlurmWorkloadManager
    from scheduler.slurm.commands import SlurmCommands, SlurmDriver

__all__ = ["SlurmCommands", "SlurmDriver", "SlurmWorkloadManager"]

__getattr__ = names_from(
    __name__,
    {
        "SlurmWorkloadManager": "scheduler.slurm.backend",
        "SlurmCommands": "scheduler.slurm.commands",
        "SlurmDriver": "scheduler.slurm.commands",
    },
)
