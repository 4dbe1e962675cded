"""Which workload manager serves which pool, built from the settings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from compute.errors import ConfigError
from scheduler.protocol import WorkloadManager


@dataclass
class Backends:
    by_pool: dict[str, WorkloadManager] = field(default_factory=dict)

    def add(self, pool: str, backend: WorkloadManager) -> None:
        self.by_pool[pool] = backend

    def for_pool(self, pool: str) -> WorkloadManager:
        try:
            return self.by_pool[pool]
        except KeyError:
            raise ConfigError(f"pool {pool!r} has no workload manager configured") from None

    def groups(self) -> Iterable[tuple[WorkloadManager, set[str]]]:
        """Each backend once, with the pools it serves (one Slurm cluster, many partitions)."""
        seen: dict[int, tuple[WorkloadManager, set[str]]] = {}
        for pool, backend in self.by_pool.items():
            seen.setdefault(id(backend), (backend, set()))[1].add(pool)
        return list(seen.values())
