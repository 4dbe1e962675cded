"""The repository: every read and write of state goes through here, as domain types."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, delete, func, insert, select, update
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
from compute.store.engine import open_engine, upgrade
from compute.store.models import (
    AllocationRow,
    AuditRow,
    Base,
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
from health.policy import DrainOwner, Lifecycle, NodeHealth
from health.result import CheckResult, Status, Suite


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _gpu_values(g: Gpu) -> dict[str, Any]:
    return {"node": g.node, "index": g.index, "uuid": g.uuid, "model": g.model, "serial": g.serial}


def _node_from_row(r: NodeRow) -> Node:
    return Node(
        name=r.name,
        pool=r.pool,
        rack=r.rack,
        gpu_model=r.gpu_model,
        gpu_count=r.gpu_count,
        state=Lifecycle(r.state),
        state_since=r.state_since,
        drain_reason=r.drain_reason,
        drain_owner=DrainOwner(r.drain_owner) if r.drain_owner else None,
        drain_actor=r.drain_actor,
        automation_drain=r.automation_drain,
        deferred_reason=r.deferred_reason,
        jobs_running=r.jobs_running,
        gpus_allocated=r.gpus_allocated,
        backend_state=r.backend_state,
        power_watts=r.power_watts,
        last_seen=r.last_seen,
        last_checked_at=r.last_checked_at,
        health=NodeHealth.from_json(r.health),
    )


def _node_values(n: Node) -> dict[str, Any]:
    return {
        "name": n.name,
        "pool": n.pool,
        "rack": n.rack,
        "gpu_model": n.gpu_model,
        "gpu_count": n.gpu_count,
        "state": n.state.value,
        "state_since": n.state_since,
        "drain_reason": n.drain_reason,
        "drain_owner": n.drain_owner.value if n.drain_owner else None,
        "drain_actor": n.drain_actor,
        "automation_drain": n.automation_drain,
        "deferred_reason": n.deferred_reason,
        "jobs_running": n.jobs_running,
        "gpus_allocated": n.gpus_allocated,
        "backend_state": n.backend_state,
        "power_watts": n.power_watts,
        "last_seen": n.last_seen,
        "last_checked_at": n.last_checked_at,
        "health": n.health.to_json(),
    }


def _result_values(r: CheckResult) -> dict[str, Any]:
    return {
        "node": r.node,
        "check": r.check,
        "version": r.version,
        "status": r.status.value,
        "suite": r.suite.value,
        "fatal": r.fatal,
        "evidence": r.evidence,
        "values": r.values if isinstance(r.values, dict) else dict(r.values),
        "gpus": ",".join(map(str, r.gpus)) if r.gpus else "",
        "at": r.at,
    }


def _result_from_row(r: CheckResultRow) -> CheckResult:
    return CheckResult(
        node=r.node,
        check=r.check,
        version=r.version,
        status=Status(r.status),
        at=r.at,
        suite=Suite(r.suite),
        fatal=r.fatal,
        evidence=r.evidence,
        values=dict(r.values),
        gpus=tuple(int(g) for g in r.gpus.split(",") if g),
    )


def _event_from_row(r: EventRow) -> Event:
    return Event(
        at=r.at,
        node=r.node,
        kind=r.kind,
        reason=r.reason,
        actor=r.actor,
        pool=r.pool,
        detail=dict(r.detail),
        id=r.id,
    )


@dataclass(frozen=True, slots=True)
class TenantRecord:
    name: str
    spec: dict[str, Any]
    state: str
    created_at: datetime
    updated_at: datetime


class Tx:
    """Writes that belong together; committed as one or not at all."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def put_node(self, node: Node) -> None:
        values = _node_values(node)
        if self.s.get(NodeRow, node.name) is None:
            self.s.execute(insert(NodeRow), [values])
        else:
            self.s.execute(update(NodeRow).where(NodeRow.name == node.name).values(**values))

    def put_nodes(self, nodes: Sequence[Node]) -> None:
        """Update many existing nodes in one statement batch (the sweep's hot path)."""
        if nodes:
            self.s.execute(update(NodeRow), [_node_values(n) for n in nodes])

    def add_nodes(self, nodes: Sequence[Node]) -> None:
        """Insert many new nodes at once (a fleet seen for the first time)."""
        if nodes:
            self.s.execute(insert(_table(NodeRow)), [_node_values(n) for n in nodes])

    def set_gpus(self, node: str, gpus: Sequence[Gpu]) -> None:
        self.s.execute(delete(GpuRow).where(GpuRow.node == node))
        if gpus:
            self.s.execute(
                insert(GpuRow),
                [_gpu_values(g) for g in gpus],
            )

    def add_results(self, results: Sequence[CheckResult]) -> None:
        # Core insert on the table: the ORM's bulk path costs more than the rows themselves.
        if results:
            self.s.execute(insert(_table(CheckResultRow)), [_result_values(r) for r in results])

    def add_gpus(self, gpus: Sequence[Gpu]) -> None:
        if gpus:
            self.s.execute(
                insert(_table(GpuRow)),
                [_gpu_values(g) for g in gpus],
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


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        engine = open_engine(url)
        upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with Session(self.engine) as session, session.begin():
            yield Tx(session)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session

    # -- reads ---------------------------------------------------------------------------

    def nodes(self, pool: str | None = None, state: Lifecycle | None = None) -> list[Node]:
        q = select(NodeRow).order_by(NodeRow.name)
        if pool is not None:
            q = q.where(NodeRow.pool == pool)
        if state is not None:
            q = q.where(NodeRow.state == state.value)
        with self._read() as s:
            return [_node_from_row(r) for r in s.scalars(q)]

    def node(self, name: str) -> Node | None:
        with self._read() as s:
            row = s.get(NodeRow, name)
            return None if row is None else _node_from_row(row)

    def gpus(self, node: str) -> list[Gpu]:
        with self._read() as s:
            return [
                Gpu(node=r.node, index=r.index, uuid=r.uuid, model=r.model, serial=r.serial)
                for r in s.scalars(select(GpuRow).where(GpuRow.node == node).order_by(GpuRow.index))
            ]

    def gpu_uuids(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        with self._read() as s:
            for node, uuid in s.execute(
                select(GpuRow.node, GpuRow.uuid).order_by(GpuRow.node, GpuRow.index)
            ):
                out.setdefault(node, []).append(uuid)
        return {k: tuple(v) for k, v in out.items()}

    def latest_results(self, node: str) -> list[CheckResult]:
        """The newest result of each check on the node."""
        with self._read() as s:
            newest = (
                select(CheckResultRow.check, func.max(CheckResultRow.id).label("id"))
                .where(CheckResultRow.node == node)
                .group_by(CheckResultRow.check)
                .subquery()
            )
            rows = s.scalars(
                select(CheckResultRow)
                .join(newest, CheckResultRow.id == newest.c.id)
                .order_by(CheckResultRow.suite, CheckResultRow.check)
            )
            return [_result_from_row(r) for r in rows]

    def results(self, node: str, limit: int = 100, check: str | None = None) -> list[CheckResult]:
        q = select(CheckResultRow).where(CheckResultRow.node == node)
        if check:
            q = q.where(CheckResultRow.check == check)
        with self._read() as s:
            rows = s.scalars(q.order_by(CheckResultRow.id.desc()).limit(limit))
            return [_result_from_row(r) for r in rows]

    def count_results(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(CheckResultRow)) or 0)

    def events(
        self,
        node: str | None = None,
        kinds: Sequence[str] | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        q = select(EventRow)
        if node:
            q = q.where(EventRow.node == node)
        if kinds:
            q = q.where(EventRow.kind.in_(list(kinds)))
        if since:
            q = q.where(EventRow.at >= since)
        with self._read() as s:
            rows = s.scalars(q.order_by(EventRow.id.desc()).limit(limit))
            return [_event_from_row(r) for r in rows]

    def event_counts(self) -> dict[tuple[str, str], int]:
        with self._read() as s:
            return {
                (pool, kind): int(n)
                for pool, kind, n in s.execute(
                    select(EventRow.pool, EventRow.kind, func.count()).group_by(
                        EventRow.pool, EventRow.kind
                    )
                )
            }

    def audit(self, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        q = select(AuditRow)
        if target:
            q = q.where(AuditRow.target == target)
        with self._read() as s:
            return [
                AuditEntry(
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    detail=dict(r.detail),
                    id=r.id,
                )
                for r in s.scalars(q.order_by(AuditRow.id.desc()).limit(limit))
            ]

    def allocations(self) -> list[Allocation]:
        with self._read() as s:
            return [
                Allocation(tenant=r.tenant, pool=r.pool, node=r.node, gpus=r.gpus, job=r.job)
                for r in s.scalars(select(AllocationRow).order_by(AllocationRow.id))
            ]

    def racks(self) -> list[Rack]:
        with self._read() as s:
            return [
                Rack(name=r.name, room=r.room, power_budget_watts=r.power_budget_watts)
                for r in s.scalars(select(RackRow).order_by(RackRow.name))
            ]

    def rooms(self) -> list[Room]:
        with self._read() as s:
            return [
                Room(name=r.name, site=r.site)
                for r in s.scalars(select(RoomRow).order_by(RoomRow.name))
            ]

    def pools(self) -> list[Pool]:
        with self._read() as s:
            return [
                Pool(name=r.name, backend=r.backend, gpu_model=r.gpu_model)
                for r in s.scalars(select(PoolRow).order_by(PoolRow.name))
            ]

    def latest_rack_power(self) -> list[RackPower]:
        with self._read() as s:
            newest = (
                select(RackPowerRow.rack, func.max(RackPowerRow.id).label("id"))
                .group_by(RackPowerRow.rack)
                .subquery()
            )
            budgets = {r.name: r.power_budget_watts for r in s.scalars(select(RackRow))}
            rows = s.scalars(
                select(RackPowerRow)
                .join(newest, RackPowerRow.id == newest.c.id)
                .order_by(RackPowerRow.rack)
            )
            return [
                RackPower(
                    rack=r.rack, at=r.at, watts=r.watts, budget_watts=budgets.get(r.rack, 0.0)
                )
                for r in rows
            ]

    def tenants(self) -> list[TenantRecord]:
        with self._read() as s:
            return [
                TenantRecord(r.name, dict(r.spec), r.state, r.created_at, r.updated_at)
                for r in s.scalars(select(TenantRow).order_by(TenantRow.name))
            ]

    def tenant(self, name: str) -> TenantRecord | None:
        with self._read() as s:
            r = s.get(TenantRow, name)
            return (
                None
                if r is None
                else TenantRecord(r.name, dict(r.spec), r.state, r.created_at, r.updated_at)
            )

    def meta(self, key: str) -> dict[str, Any] | None:
        with self._read() as s:
            row = s.get(MetaRow, key)
            return None if row is None else dict(row.value)
