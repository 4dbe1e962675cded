"""Settings of a pool (the [[pools]] tables of the file): one model per backend, chosen by
``backend``; each backend's own table is that backend's settings model, made strict here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from compute.config_base import Section as _Section
from compute.validation import PoolName, ShortText
from scheduler.kubernetes.settings import KubernetesSettings
from scheduler.slurm.settings import SlurmSettings


class SlurmPoolSettings(_Section, SlurmSettings):
    """Table [pools.slurm]."""


class KubernetesPoolSettings(_Section, KubernetesSettings):
    """Table [pools.kubernetes]."""


class _Pool(_Section):
    name: PoolName = Field(description="Pool name, unique.")
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


_BACKEND = (
    "Workload manager of the pool: 'simulated' (the simulated datacenter), "
    "'slurm' (a Slurm partition, driven with sinfo/squeue/scontrol) or 'kubernetes' (nodes "
    "of a cluster, by label; drained with cordon, taint and the Eviction API)."
)


_ADOPT = (
    "Mode of the pool when computectl records it for the first time: 'observe' (decisions "
    "are recorded as what would have been done; the workload manager is left alone until "
    "an operator runs 'computectl pools enable') or 'enforce' (computectl acts). A recorded "
    "pool keeps the mode operators gave it."
)
Adopt = Literal["observe", "enforce"]


class SimulatedPool(_Pool):
    backend: Literal["simulated"] = Field(description=_BACKEND)
    # A simulated site is computectl's own from its first second.
    adopt: Adopt = Field("enforce", description=_ADOPT)


class SlurmPool(_Pool):
    backend: Literal["slurm"] = Field(description=_BACKEND)
    # An existing cluster is watched before computectl may act on it.
    adopt: Adopt = Field("observe", description=_ADOPT)
    slurm: SlurmPoolSettings = Field(
        default_factory=SlurmPoolSettings,
        description="Table [pools.slurm], backend 'slurm' only: partition (default: the pool's "
        "name), slurm_conf (path passed as SLURM_CONF; default: Slurm's own), bin_dir (of "
        "sinfo/squeue/scontrol; default: PATH), command_timeout_seconds (default 30; a slower "
        "command counts as Slurm unreachable), node_command (how computectl's jobs run "
        "computectl on a node), burn_in_report_url (if set, computectl runs burn-in on "
        "drained nodes itself, in a MAINT reservation) and the burn-in job's "
        "burn_in_time_limit_minutes, burn_in_reservation_minutes, "
        "burn_in_account, burn_in_output, and rack_feature_prefix (a node feature naming its "
        "rack, default 'rack:'; the leaf switch comes from topology/tree). Pools with the same "
        "slurm_conf and bin_dir share one backend.",
    )

    @property
    def partition(self) -> str:
        return self.slurm.partition_of(self.name)


class KubernetesPool(_Pool):
    backend: Literal["kubernetes"] = Field(description=_BACKEND)
    adopt: Adopt = Field("observe", description=_ADOPT)
    kubernetes: KubernetesPoolSettings = Field(
        default_factory=KubernetesPoolSettings,
        description="Table [pools.kubernetes], backend 'kubernetes' only: kubeconfig (default: "
        "in-cluster, else $KUBECONFIG or ~/.kube/config), context, node_selector (default "
        '{"computectl.io/pool" = <pool name>}), gpu_resource (default nvidia.com/gpu), '
        "request_timeout_seconds (default 30), rack_label and switch_label (node labels naming "
        "its rack and leaf switch; default topology.computectl.io/rack and /switch). Pools "
        "with the same kubeconfig, context and "
        "gpu_resource share one backend.",
    )


BACKENDS = ("simulated", "slurm", "kubernetes")


def _backend(value: Any) -> str | None:
    backend = value.get("backend") if isinstance(value, dict) else getattr(value, "backend", None)
    return backend if isinstance(backend, str) and backend in BACKENDS else None


POOL_MODELS: tuple[type[_Pool], ...] = (SimulatedPool, SlurmPool, KubernetesPool)
# A pool's table is read as the model its ``backend`` names.
PoolSettings = Annotated[
    Annotated[SimulatedPool, Tag("simulated")]
    | Annotated[SlurmPool, Tag("slurm")]
    | Annotated[KubernetesPool, Tag("kubernetes")],
    Discriminator(
        _backend,
        custom_error_type="backend",
        custom_error_message="backend: Input should be " + ", ".join(map(repr, BACKENDS)),
    ),
]
