"""Settings of a pool and of its workload manager (the [[pools]] tables of the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from compute.config_base import Section as _Section
from compute.validation import PoolName, ShortText


class SlurmPoolSettings(_Section):
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
    def _reservation_outlasts_job(self) -> SlurmPoolSettings:
        if self.burn_in_reservation_minutes <= self.burn_in_time_limit_minutes:
            raise ValueError(
                "burn_in_reservation_minutes must be longer than burn_in_time_limit_minutes "
                f"({self.burn_in_reservation_minutes} <= {self.burn_in_time_limit_minutes})"
            )
        return self


class KubernetesPoolSettings(_Section):
    kubeconfig: Path | None = Field(
        None,
        description="kubeconfig of the cluster (default: the in-cluster ServiceAccount when "
        "computectl runs in a pod, else $KUBECONFIG or ~/.kube/config).",
    )
    context: str | None = Field(
        None, description="kubeconfig context to use (default: the kubeconfig's current one)."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Labels whose nodes form the pool (default: computectl.io/pool = the "
        "pool's name).",
    )
    gpu_resource: str = Field(
        "nvidia.com/gpu", min_length=1, description="Extended resource the GPUs are counted as."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="An API request that takes longer counts as Kubernetes unreachable."
    )
    burn_in_image: str | None = Field(
        None,
        description="Image with computectl for the burn-in Job computectl starts on a drained "
        "node (see deploy/kubernetes/burnin-job.yaml; default: none, so drained nodes wait for "
        "burn-in results posted from the node itself).",
    )
    burn_in_namespace: str = Field(
        "computectl-system", description="Namespace of the burn-in Jobs (and of the node check)."
    )


class PoolSettings(_Section):
    name: PoolName = Field(description="Pool name, unique.")
    backend: Literal["simulated", "slurm", "kubernetes"] = Field(
        description="Workload manager of the pool: 'simulated' (the simulated datacenter), "
        "'slurm' (a Slurm partition, driven with sinfo/squeue/scontrol) or 'kubernetes' (nodes "
        "of a cluster, by label; drained with cordon, taint and the Eviction API)."
    )
    gpu_model: ShortText = Field(description="The one GPU model of the pool's nodes.")
    kind: Literal["training", "inference"] = Field(
        "training", description="The work the pool is sold for (used by the simulation)."
    )
    pair_test_floor_gbps: float | None = Field(
        None,
        gt=0,
        description="NCCL pair test: bus bandwidth (GB/s) below which a pair is slow even "
        "when the whole pool is (the fabric's design figure); default: judge by the median.",
    )
    slurm: SlurmPoolSettings | None = Field(
        None,
        description="Table [pools.slurm], backend 'slurm' only: partition (default: the pool's "
        "name), slurm_conf (path passed as SLURM_CONF; default: Slurm's own), bin_dir (of "
        "sinfo/squeue/scontrol; default: PATH), command_timeout_seconds (default 30; a slower "
        "command counts as Slurm unreachable), node_command (how computectl's jobs run "
        "computectl on a node), burn_in_report_url (if set, computectl runs burn-in on "
        "drained nodes itself, in a MAINT reservation) and the burn-in job's "
        "burn_in_time_limit_minutes, burn_in_reservation_minutes, "
        "burn_in_account, burn_in_output. Pools with the same slurm_conf and bin_dir share "
        "one backend.",
    )
    kubernetes: KubernetesPoolSettings | None = Field(
        None,
        description="Table [pools.kubernetes], backend 'kubernetes' only: kubeconfig (default: "
        "in-cluster, else $KUBECONFIG or ~/.kube/config), context, node_selector (default "
        '{"computectl.io/pool" = <pool name>}), gpu_resource (default nvidia.com/gpu), '
        "request_timeout_seconds (default 30). Pools with the same kubeconfig, context and "
        "gpu_resource share one backend.",
    )

    @model_validator(mode="after")
    def _slurm_table_needs_slurm(self) -> PoolSettings:
        if self.slurm is not None and self.backend != "slurm":
            raise ValueError(
                f"pool {self.name!r}: a [pools.slurm] table needs backend = 'slurm' "
                f"(it is {self.backend!r})"
            )
        if self.kubernetes is not None and self.backend != "kubernetes":
            raise ValueError(
                f"pool {self.name!r}: a [pools.kubernetes] table needs backend = 'kubernetes' "
                f"(it is {self.backend!r})"
            )
        return self

    @property
    def slurm_settings(self) -> SlurmPoolSettings:
        """The Slurm table with its defaults (backend 'slurm')."""
        return self.slurm or SlurmPoolSettings()

    @property
    def slurm_partition(self) -> str:
        return self.slurm_settings.partition or self.name

    @property
    def kubernetes_settings(self) -> KubernetesPoolSettings:
        """The Kubernetes table with its defaults (backend 'kubernetes')."""
        return self.kubernetes or KubernetesPoolSettings()

    @property
    def kubernetes_node_selector(self) -> dict[str, str]:
        return self.kubernetes_settings.node_selector or {"computectl.io/pool": self.name}
