"""Writes: what one transaction may change, committed as one or not at all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from compute.domain import (
    Allocation,
    AuditEntry,
    Event,
    Gpu,
    Node,
    Pool,
    Rack,
    RackPower,
    Room,
    Site,
)
from compute.store.models import (
    AllocationRow,
    AuditRow,
    CheckResultRow,
    EventRow,
    GpuRow,
    MetaRow,
    NodeRow,
    PoolRow,
    RackPowerRow,
    RackRow,
    RoomRow,
    SiteRow,
    TenantRow,
)
from compute.store.rows import gpu_values, node_values, result_values, table_of
from health.result import CheckResult


class Tx:
    """Writes that belong together; committed as one or not at all."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def put_node(self, node: Node) -> None:
        values = node_values(node)
        if self.s.get(NodeRow, node.name) is None:
            self.s.execute(insert(NodeRow), [values])
        else:
            self.s.execute(update(NodeRow).where(NodeRow.name == node.name).values(**values))

    def put_nodes(self, nodes: Sequence[Node]) -> None:
        """Update many existing nodes in one statement batch (the sweep's hot path)."""
        if nodes:
            self.s.execute(update(NodeRow), [node_values(n) for n in nodes])

    def add_nodes(self, nodes: Sequence[Node]) -> None:
        """Insert many new nodes at once (a fleet seen for the first time)."""
        if nodes:
            self.s.execute(insert(table_of(NodeRow)), [node_values(n) for n in nodes])

    def set_gpus(self, node: str, gpus: Sequence[Gpu]) -> None:
        self.s.execute(delete(GpuRow).where(GpuRow.node == node))
        if gpus:
            self.s.execute(
                insert(GpuRow),
                [gpu_values(g) for g in gpus],
            )

    def add_results(self, results: Sequence[CheckResult]) -> None:
        # Core insert on the table: the ORM's bulk path costs more than the rows themselves.
        if results:
            self.s.execute(insert(table_of(CheckResultRow)), [result_values(r) for r in results])

    def add_gpus(self, gpus: Sequence[Gpu]) -> None:
        if gpus:
            self.s.execute(
                insert(table_of(GpuRow)),
                [gpu_values(g) for g in gpus],
            )

    def add_event(self, event: Event) -> None:
        self.s.add(
            EventRow(
                at=event.at,
                node=event.node,
                kind=event.kind,
                reason=event.reason,
                actor=event.actor,
                pool=event.pool,
                detail=dict(event.detail),
            )
        )

    def add_audit(self, entry: AuditEntry) -> None:
        self.s.add(
            AuditRow(
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                target=entry.target,
                detail=dict(entry.detail),
            )
        )

    def replace_allocations(self, allocations: Sequence[Allocation]) -> None:
        self.s.execute(delete(AllocationRow))
        if allocations:
            self.s.execute(
                insert(AllocationRow),
                [
                    {
                        "tenant": a.tenant,
                        "pool": a.pool,
                        "node": a.node,
                        "gpus": a.gpus,
                        "job": a.job,
                    }
                    for a in allocations
                ],
            )

    def add_rack_power(self, samples: Sequence[RackPower]) -> None:
        if samples:
            self.s.execute(
                insert(RackPowerRow),
                [{"rack": p.rack, "at": p.at, "watts": p.watts} for p in samples],
            )

    def set_meta(self, key: str, value: dict[str, Any]) -> None:
        row = self.s.get(MetaRow, key)
        if row is None:
            self.s.add(MetaRow(key=key, value=value))
        else:
            row.value = value

    def put_topology(
        self,
        sites: Iterable[Site],
        rooms: Iterable[Room],
        racks: Iterable[Rack],
        pools: Iterable[Pool],
    ) -> None:
        for site in sites:
            self.s.merge(SiteRow(name=site.name))
        for room in rooms:
            self.s.merge(RoomRow(name=room.name, site=room.site))
        for rack in racks:
            self.s.merge(
                RackRow(name=rack.name, room=rack.room, power_budget_watts=rack.power_budget_watts)
            )
        for pool in pools:
            self.s.merge(PoolRow(name=pool.name, backend=pool.backend, gpu_model=pool.gpu_model))

    def put_tenant(self, name: str, spec: dict[str, Any], state: str, at: datetime) -> None:
        row = self.s.get(TenantRow, name)
        if row is None:
            self.s.add(TenantRow(name=name, spec=spec, state=state, created_at=at, updated_at=at))
        else:
            row.spec, row.state, row.updated_at = spec, state, at

    def delete_tenant(self, name: str) -> None:
        self.s.execute(delete(TenantRow).where(TenantRow.name == name))

    def prune(self, before: datetime) -> int:
        res = self.s.execute(delete(CheckResultRow).where(CheckResultRow.at < before))
        self.s.execute(delete(RackPowerRow).where(RackPowerRow.at < before))
        return int(getattr(res, "rowcount", 0) or 0)
