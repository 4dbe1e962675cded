"""Which workload manager serves which pool (and makes its tenants), built from the settings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from compute.errors import ConfigError
from scheduler.protocol import WorkloadManager
from scheduler.tenants import TenantBackend

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

    def add(
        self, pool: str, backend: WorkloadManager, tenants: TenantBackend | None = None
    ) -> None:
        self.by_pool[pool] = backend
        if tenants is not None:
            self.tenants_by_pool[pool] = tenants

    def for_pool(self, pool: str) -> WorkloadManager:
        try:
            return self.by_pool[pool]
        except KeyError:
            raise ConfigError(f"pool {pool!r} has no workload manager configured") from None

    def groups(self) -> Iterable[tuple[WorkloadManager, set[str]]]:
        return _group(self.by_pool)

    def tenant_groups(self) -> list[tuple[TenantBackend, set[str]]]:
        return _group(self.tenants_by_pool)

    def close(self) -> None:
        """Release what backends hold open (API clients)."""
        for backend, _pools in self.groups():
            closer = getattr(backend, "close", None)
            if callable(closer):
                closer()
