"""A Slurm pool's settings: its table in the control plane's configuration."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SlurmSettings(BaseModel):
    """Table [pools.slurm] (the control plane adds its strict checks of every value)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    partition: str | None = Field(
        None, description="Slurm partition whose nodes form the pool (default: the pool's name)."
    )
    slurm_conf: Path | None = Field(
        None,
        description="slurm.conf of the cluster, passed to Slurm's tools as SLURM_CONF "
        "(default: Slurm's own default or the SLURM_CONF of computectl's environment).",
    )
    bin_dir: Path | None = Field(
        None, description="Directory of sinfo, squeue and scontrol (default: found on PATH)."
    )
    command_timeout_seconds: float = Field(
        30.0, gt=0, description="A Slurm command that runs longer counts as Slurm unreachable."
    )
    rack_feature_prefix: str = Field(
        "rack:",
        description="A node feature starting with this names the node's rack (Feature=rack:r12 "
        'in slurm.conf: rack r12); "" reads no rack from Slurm. The leaf switch comes from '
        "Slurm's topology.conf when it runs TopologyPlugin=topology/tree.",
    )
    burn_in_report_url: str | None = Field(
        None,
        description="Control plane URL the burn-in job on a drained node reports to "
        "(`node check --report`). If set, computectl starts burn-in itself: it reserves the "
        "node (MAINT reservation computectl-burnin-<node>), resumes it into the reservation "
        "and submits the job there; default: none, so drained nodes wait for burn-in results "
        "posted from the node itself.",
    )
    node_command: list[str] = Field(
        default_factory=lambda: ["computectl"],
        min_length=1,
        description="How computectl's jobs (burn-in, pair test) run computectl on a node "
        "(e.g. a venv's absolute path); the subcommand follows.",
    )
    burn_in_time_limit_minutes: int = Field(
        60, gt=0, description="Time limit of the burn-in job (sbatch --time)."
    )
    burn_in_reservation_minutes: int = Field(
        180,
        gt=0,
        description="How long the burn-in reservation lasts unless computectl ends it first; "
        "longer than the job's time limit, and best longer than "
        "remediation.burn_in_timeout_minutes, so the node never leaves it unjudged.",
    )
    burn_in_account: str | None = Field(
        None, description="Slurm account of the burn-in job (default: the user's default)."
    )
    burn_in_output: str = Field(
        "/tmp/computectl-burnin-%j.out",
        min_length=1,
        description="The burn-in job's output file on the node (sbatch --output).",
    )

    @model_validator(mode="after")
    def _reservation_outlasts_job(self) -> SlurmSettings:
        if self.burn_in_reservation_minutes <= self.burn_in_time_limit_minutes:
            raise ValueError(
                "burn_in_reservation_minutes must be longer than burn_in_time_limit_minutes "
                f"({self.burn_in_reservation_minutes} <= {self.burn_in_time_limit_minutes})"
            )
        return self

    def partition_of(self, pool: str) -> str:
        return self.partition or pool

    @property
    def cluster(self) -> tuple[Path | None, Path | None]:
        """Pools with the same slurm.conf and tools are one cluster, served by one backend."""
        return (self.slurm_conf, self.bin_dir)
