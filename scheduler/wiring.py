"""What a backend's builder gives the control plane for each pool it serves."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.burnin import BurnInLauncher
from scheduler.pairs import PairLauncher
from scheduler.protocol import WorkloadManager
from scheduler.tenants import TenantBackend
from scheduler.usage import UsageSource


@dataclass(frozen=True, slots=True)
class PoolWiring:
    """One pool's workload manager and tenants (shared by the pools of one cluster), the
    launchers of the jobs computectl starts there, and where its GPU usage is read (None:
    the pool has none)."""

    manager: WorkloadManager
    tenants: TenantBackend | None = None
    burn_in: BurnInLauncher | None = None
    pairs: PairLauncher | None = None
    usage: UsageSource | None = None
