"""The Slurm backend: sinfo/squeue --json to read, scontrol to drain and resume."""

from scheduler.slurm.backend import SlurmWorkloadManager
from scheduler.slurm.commands import SlurmCommands, SlurmDriver

__all__ = ["SlurmCommands", "SlurmDriver", "SlurmWorkloadManager"]
