"""What the front ends read: events, capacity, racks, tenants and the overview, each as one
call that returns domain types (the views in `compute.views` turn them into JSON and tables)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from compute.domain import Allocation, Event, Node, NodeSummary, Rack
from compute.errors import InvalidInput, NotFoundError
from compute.services.capacity import Capacity, CapacityRow, capacity, gpu_rows
from compute.store import Store, TenantRecord, api_reads
from health.policy import Lifecycle
from scheduler.protocol import JobInfo
from scheduler.tenants import TenantSpec


@dataclass(frozen=True)
class RackPowerNow:
    rack: Rack
    power_watts: float | None  # the latest sample; None before the first


@dataclass(frozen=True)
class TenantHolding:
    """A tenant as recorded, with the GPUs its work held at the last sweep."""

    record: TenantRecord
    allocations: list[Allocation]
    allocations_at: str | None  # when they were read; None before the first sweep

    @property
    def held_by_pool(self) -> dict[str, int]:
        held: dict[str, int] = {}
        for a in self.allocations:
            held[a.pool] = held.get(a.pool, 0) + a.gpus
        return held

    @property
    def spec(self) -> TenantSpec:
        # The spec's models load pydantic's validators: only tenant commands pay for them.
        from compute.tenants.spec import spec_from_json

        return spec_from_json(self.record.spec)


@dataclass(frozen=True)
class TenantDetail:
    holding: TenantHolding
    jobs: list[JobInfo] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    now: datetime
    last_sweep: dict[str, Any] | None
    nodes: list[NodeSummary]
    racks: list[RackPowerNow]
    gpus: list[CapacityRow]  # by pool, model and state (no tenant's: the page shows none)
    installed: int
    events: list[Event]


def nodes(store: Store, pool: str | None = None, state: str | None = None) -> list[Node]:
    """The nodes, optionally of one pool and one lifecycle state (both checked)."""
    lifecycle = None
    if state is not None:
        try:
            lifecycle = Lifecycle(state)
        except ValueError:
            raise InvalidInput(
                f"unknown state {state!r}; one of {', '.join(s.value for s in Lifecycle)}"
            ) from None
    if pool is not None and pool not in {p.name for p in store.pools()}:
        raise NotFoundError(f"unknown pool {pool!r}")
    return store.nodes(pool=pool, state=lifecycle)


def allocations_at(store: Store) -> str | None:
    """When the allocations (GPUs held) were read: the last sweep's time; None before it."""
    last = store.meta("last_sweep") or {}
    at = last.get("at")
    return str(at) if at else None


def events(
    store: Store, node: str | None = None, kinds: Sequence[str] | None = None, limit: int = 100
) -> list[Event]:
    """Events, newest first; an unknown node is refused rather than shown as quiet."""
    found = api_reads.events(store, node, kinds, limit)
    if found is None:
        raise NotFoundError(f"unknown node {node!r}")
    return found


def fleet_capacity(store: Store) -> Capacity:
    return capacity(store.summaries(), store.allocations())


def racks(store: Store) -> list[RackPowerNow]:
    power = {p.rack: p.watts for p in store.latest_rack_power()}
    return [RackPowerNow(r, power.get(r.name)) for r in store.racks()]


def tenants(store: Store) -> list[TenantHolding]:
    allocations = store.allocations()
    at = allocations_at(store)
    return [
        TenantHolding(r, [a for a in allocations if a.tenant == r.name], at)
        for r in store.tenants()
    ]


def tenant(store: Store, name: str) -> TenantHolding:
    record = store.tenant(name)
    if record is None:
        raise NotFoundError(f"unknown tenant {name!r}")
    allocations = [a for a in store.allocations() if a.tenant == name]
    return TenantHolding(record, allocations, allocations_at(store))


def tenant_detail(store: Store, jobs: Callable[[str], list[JobInfo]], name: str) -> TenantDetail:
    """The tenant (refused if unknown) and its jobs, as its backends list them now."""
    holding = tenant(store, name)
    return TenantDetail(holding, jobs(name))


def overview(store: Store, now: datetime, events_shown: int = 15) -> Overview:
    nodes = store.summaries()
    return Overview(
        now=now,
        last_sweep=store.meta("last_sweep"),
        nodes=nodes,
        racks=racks(store),
        gpus=gpu_rows(nodes),
        installed=sum(n.gpu_count for n in nodes),
        events=store.events(limit=events_shown),
    )
