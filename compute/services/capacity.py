"""Capacity: GPUs by state, pool and model (summing to what is installed), and by tenant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from compute.domain import Allocation, Counted
from health.policy import Lifecycle

# GPU states: a node in service splits into allocated and idle GPUs; otherwise its
# GPUs are all in the node's lifecycle state.
GPU_STATES = (
    "allocated",
    "idle",
    "draining",
    "drained",
    "burn_in",
    "repair",
    "provisioning",
    "retired",
)


@dataclass(frozen=True)
class CapacityRow:
    pool: str
    gpu_model: str
    state: str
    gpus: int


@dataclass(frozen=True)
class TenantRow:
    tenant: str
    pool: str
    gpu_model: str
    gpus: int


@dataclass(frozen=True)
class Capacity:
    rows: list[CapacityRow]
    tenants: list[TenantRow]
    installed: int

    @property
    def total(self) -> int:
        return sum(r.gpus for r in self.rows)


def gpu_states(node: Counted) -> dict[str, int]:
    if node.state is Lifecycle.IN_SERVICE:
        allocated = max(0, min(node.gpus_allocated, node.gpu_count))
        return {"allocated": allocated, "idle": node.gpu_count - allocated}
    return {node.state.value: node.gpu_count}


def capacity(nodes: Sequence[Counted], allocations: list[Allocation]) -> Capacity:
    model_of = {n.name: n.gpu_model for n in nodes}
    tenants: dict[tuple[str, str, str], int] = defaultdict(int)
    for a in allocations:
        tenants[(a.tenant, a.pool, model_of.get(a.node, "?"))] += a.gpus
    return Capacity(
        rows=gpu_rows(nodes),
        tenants=[TenantRow(t, p, m, g) for (t, p, m), g in sorted(tenants.items())],
        installed=sum(n.gpu_count for n in nodes),
    )


def gpu_rows(nodes: Sequence[Counted]) -> list[CapacityRow]:
    """GPUs by pool, model and state (those with any)."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for n in nodes:
        for state, gpus in gpu_states(n).items():
            counts[(n.pool, n.gpu_model, state)] += gpus
    order = {s: i for i, s in enumerate(GPU_STATES)}
    return [
        CapacityRow(pool, model, state, gpus)
        for (pool, model, state), gpus in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99))
        )
        if gpus
    ]
