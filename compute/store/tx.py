"""Writes: what one transaction may change, committed as one or not at all."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Result, bindparam, delete, insert, select, update
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
from compute.errors import StaleWrite
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
from compute.store.rows import gpu_values, node_from_row, node_values, result_values, table_of
from health.result import CheckResult


class Tx:
    """Writes that belong together; committed as one or not at all."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def node(self, name: str) -> Node | None:
        """The node as stored now, its row locked until this transaction ends (PostgreSQL;
        SQLite's write transaction holds the whole store): what is written next is on it."""
        t = table_of(NodeRow)
        row = self.s.execute(select(t).where(t.c.name == name).with_for_update()).first()
        return None if row is None else node_from_row(row)

    def nodes(self, names: Collection[str]) -> list[Node]:
        """``node`` for many (those stored), in name order."""
        t = table_of(NodeRow)
        out: list[Node] = []
        for chunk in _chunks(sorted(names)):
            q = select(t).where(t.c.name.in_(chunk)).order_by(t.c.name).with_for_update()
            out += [node_from_row(r) for r in self.s.execute(q)]
        return out

    def versions(self) -> dict[str, int]:
        """Every node's stored version, the rows locked until this transaction ends."""
        t = table_of(NodeRow)
        # In name order, as every other writer of many nodes: two never wait on each other.
        q = select(t.c.name, t.c.version).order_by(t.c.name).with_for_update()
        return {name: version for name, version in self.s.execute(q)}

    def put_node(self, node: Node) -> Node:
        """Write ``node`` if the stored row is still the version it was read at (a node not
        stored yet is added); returns it as stored. Raises StaleWrite (nothing written) if
        someone wrote the node since."""
        t = table_of(NodeRow)
        res = self.s.execute(
            update(t)
            .where(t.c.name == node.name, t.c.version == node.version)
            .values(**node_values(node), version=node.version + 1)
        )
        if _rowcount(res) == 1:
            return replace(node, version=node.version + 1)
        stored = self.s.execute(select(t.c.version).where(t.c.name == node.name)).scalar()
        if stored is None:
            self.s.execute(insert(t), [{**node_values(node), "version": node.version}])
            return node
        raise StaleWrite(
            f"{node.name} was changed by another writer (version {stored}, "
            f"read at {node.version}); nothing was written"
        )

    def put_nodes(self, nodes: Sequence[Node]) -> None:
        """Write many existing nodes in one statement batch (the sweep's hot path), each on
        the condition ``put_node`` sets; one written meanwhile fails them all (StaleWrite).
        Lock them first (``versions``) and pass only those still as read."""
        if not nodes:
            return
        t = table_of(NodeRow)
        stmt = update(t).where(t.c.name == bindparam("b_name"), t.c.version == bindparam("b_v"))
        rows = []
        for n in nodes:
            values = node_values(n)
            values["b_name"] = values.pop("name")
            values["b_v"] = n.version
            values["version"] = n.version + 1
            rows.append(values)
        res = self.s.execute(stmt, rows)
        if self.s.get_bind().dialect.supports_sane_multi_rowcount and _rowcount(res) != len(rows):
            raise StaleWrite(f"{len(rows) - _rowcount(res)} of {len(rows)} nodes changed meanwhile")

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
        return _rowcount(res)


def recording(
    events: Sequence[Event], audit: Sequence[AuditEntry] = ()
) -> Callable[[Tx, Node], None]:
    """What goes with a node's write (``Store.update_node``'s ``record``): events, audit."""

    def record(tx: Tx, _stored: Node) -> None:
        for ev in events:
            tx.add_event(ev)
        for entry in audit:
            tx.add_audit(entry)

    return record


def _rowcount(res: Result[Any]) -> int:
    return int(getattr(res, "rowcount", 0) or 0)


def _chunks(names: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    # Bound parameters per statement stay under every driver's limit.
    for i in range(0, len(names), size):
        yield names[i : i + size]
