"""Which workload manager serves which pool (and makes its tenants), built from the settings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from compute.errors import ConfigError
from scheduler.burnin import BurnInLauncher as BurnInJob
from scheduler.pairs import PairLauncher
from scheduler.protocol import WorkloadManager
from scheduler.tenants import TenantBackend
from scheduler.usage import UsageSource
from scheduler.wiring import PoolWiring

if TYPE_CHECKING:
    from compute.clock import Clock
    from compute.config import Settings
    from compute.domain import Node
    from compute.services.ingest import Ingest
    from compute.services.remediation import BurnInLauncher
    from compute.simulation.datacenter import SimulatedDatacenter
    from compute.store import Store
    from health.thresholds import Thresholds

T = TypeVar("T")


def _group(by_pool: dict[str, T]) -> list[tuple[T, set[str]]]:
    """Each backend once, with the pools it serves (one Slurm cluster, many partitions)."""
    seen: dict[int, tuple[T, set[str]]] = {}
    for pool, backend in by_pool.items():
        seen.setdefault(id(backend), (backend, set()))[1].add(pool)
    return list(seen.values())


@dataclass
class Backends:
    by_pool: dict[str, WorkloadManager] = field(default_factory=dict)
    tenants_by_pool: dict[str, TenantBackend] = field(default_factory=dict)
    usage_by_pool: dict[str, UsageSource] = field(default_factory=dict)

    def add(
        self,
        pool: str,
        backend: WorkloadManager,
        tenants: TenantBackend | None = None,
        usage: UsageSource | None = None,
    ) -> None:
        self.by_pool[pool] = backend
        if tenants is not None:
            self.tenants_by_pool[pool] = tenants
        if usage is not None:
            self.usage_by_pool[pool] = usage

    def for_pool(self, pool: str) -> WorkloadManager:
        try:
            return self.by_pool[pool]
        except KeyError:
            raise ConfigError(f"pool {pool!r} has no workload manager configured") from None

    def groups(self) -> Iterable[tuple[WorkloadManager, set[str]]]:
        return _group(self.by_pool)

    def tenant_groups(self) -> list[tuple[TenantBackend, set[str]]]:
        return _group(self.tenants_by_pool)

    def usage_groups(self) -> list[tuple[UsageSource, set[str]]]:
        return _group(self.usage_by_pool)

    def close(self) -> None:
        """Release what backends hold open (API clients)."""
        for backend, _pools in self.groups():
            closer = getattr(backend, "close", None)
            if callable(closer):
                closer()


@dataclass(frozen=True, slots=True)
class WiringContext:
    """What a backend's builder may use of the control plane being built."""

    settings: Settings
    store: Store
    clock: Clock
    ingest: Ingest
    thresholds: Thresholds
    datacenter: SimulatedDatacenter | None = None


@dataclass(frozen=True, slots=True)
class Wired:
    """Everything the control plane takes from a backend for one pool."""

    manager: WorkloadManager
    tenants: TenantBackend | None = None
    burn_in: BurnInLauncher | None = None
    pairs: PairLauncher | None = None
    usage: UsageSource | None = None

    @classmethod
    def of(cls, w: PoolWiring) -> Wired:
        """A workload manager's pool: its burn-in is a job whose results arrive by ingest."""
        burn_in = JobBurnIn(w.burn_in) if w.burn_in is not None else None
        return cls(w.manager, w.tenants, burn_in, w.pairs, w.usage)


class JobBurnIn:
    """Burn-in through a workload manager's job: the node's results arrive by ingest."""

    def __init__(self, job: BurnInJob) -> None:
        self.job = job

    def launch(self, node: Node) -> None:
        self.job.launch(node.name, node.gpu_count)
