"""The repository: every read of state goes through here, as domain types; writes go through
one transaction (`Tx`, compute/store/tx.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from compute.domain import (
    Allocation,
    AuditEntry,
    Event,
    Gpu,
    Node,
    NodeSummary,
    Pool,
    Rack,
    RackPower,
    Room,
)
from compute.errors import NotFoundError, StaleWrite
from compute.store.engine import WRITES, open_engine, upgrade
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
    TenantRow,
)
from compute.store.rows import (
    TenantRecord,
    event_from_row,
    node_from_row,
    result_from_row,
    summary_columns,
    summary_from_row,
    table_of,
)
from compute.store.tx import Tx
from health.policy import Lifecycle, NodeView
from health.result import CheckResult

__all__ = ["Store", "TenantRecord", "Tx"]


def _chunks(names: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    # Bound parameters per statement stay under every driver's limit.
    for i in range(0, len(names), size):
        yield names[i : i + size]


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{WRITES: True})

    @classmethod
    def open(cls, url: str) -> Store:
        engine = open_engine(url)
        upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with Session(self._writer) as session, session.begin():
            yield Tx(session)

    def update_node(
        self,
        name: str,
        change: Callable[[Node], Node | None],
        *,
        attempts: int = 8,
        record: Callable[[Tx, Node], None] | None = None,
    ) -> Node:
        """Change the node as stored now: ``change`` gets it fresh and returns it changed
        (None: nothing to write); ``record`` writes what goes with it (events, audit) in the
        same transaction, given the node as stored. Retried on a fresh read if someone wrote
        the node meanwhile; returns the node as stored."""
        stale = StaleWrite(f"{name}: no write after {attempts} attempts")
        for _ in range(attempts):
            try:
                with self.transaction() as tx:
                    node = tx.node(name)
                    if node is None:
                        raise NotFoundError(f"unknown node {name!r}")
                    new = change(node)
                    if new is None:
                        return node
                    stored = tx.put_node(new)
                    if record is not None:
                        record(tx, stored)
                    return stored
            except StaleWrite as exc:
                stale = exc
        raise stale

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session

    # -- reads ---------------------------------------------------------------------------

    def nodes(self, pool: str | None = None, state: Lifecycle | None = None) -> list[Node]:
        # Core rows straight into Node: the ORM's objects cost more than the rows (a sweep
        # reads every node of the site).
        t = table_of(NodeRow)
        q = select(t).order_by(t.c.name)
        if pool is not None:
            q = q.where(t.c.pool == pool)
        if state is not None:
            q = q.where(t.c.state == state.value)
        with self.engine.connect() as conn:
            return [node_from_row(r) for r in conn.execute(q)]

    def summaries(self) -> list[NodeSummary]:
        """Every node without its health (what counting GPUs and the overview read)."""
        t = table_of(NodeRow)
        q = select(*summary_columns(t)).order_by(t.c.name)
        with self.engine.connect() as conn:
            return [summary_from_row(r) for r in conn.execute(q)]

    def node(self, name: str) -> Node | None:
        t = table_of(NodeRow)
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        return None if row is None else node_from_row(row)

    def attention(self, limit: int) -> list[str]:
        """Nodes a posted result asked the acting control plane to decide on, oldest first."""
        q = (
            select(NodeRow.name)
            .where(NodeRow.attention_at.is_not(None))
            .order_by(NodeRow.attention_at, NodeRow.name)
            .limit(limit)
        )
        with self._read() as s:
            return list(s.scalars(q))

    def version(self, name: str) -> int | None:
        with self._read() as s:
            return s.scalar(select(NodeRow.version).where(NodeRow.name == name))

    def budget_views(self, pool: str) -> list[NodeView]:
        """The pool's nodes as its drain budget counts them (health.policy.apply_budget), in
        one narrow query: of a node's health only whether its burn-in is voluntary."""
        voluntary = NodeRow.health["burn_in_voluntary"].as_boolean()
        q = select(NodeRow.name, NodeRow.state, NodeRow.automation_drain, voluntary).where(
            NodeRow.pool == pool, NodeRow.state != Lifecycle.RETIRED.value
        )
        with self._read() as s:
            rows = s.execute(q).all()
        return [
            NodeView(
                name=name,
                pool=pool,
                state=Lifecycle(state),
                automation_drain=automation,
                voluntary=state == Lifecycle.BURN_IN.value and bool(willing),
            )
            for name, state, automation, willing in rows
        ]

    def scope_sizes(self) -> dict[tuple[str, str], int]:
        """How many nodes (not retired) each rack, switch and pool holds, keyed ("rack",
        name) and so on: one grouped query for all (the brake sizes its thresholds by them)."""
        t = table_of(NodeRow)
        q = (
            select(t.c.rack, t.c.switch, t.c.pool, func.count())
            .where(t.c.state != Lifecycle.RETIRED.value)
            .group_by(t.c.rack, t.c.switch, t.c.pool)
        )
        sizes: dict[tuple[str, str], int] = {}
        with self.engine.connect() as conn:
            for rack, switch, pool, n in conn.execute(q):
                for key in (("rack", rack), ("switch", switch), ("pool", pool)):
                    sizes[key] = sizes.get(key, 0) + int(n)
        return sizes

    def gpus(self, node: str) -> list[Gpu]:
        with self._read() as s:
            return [
                Gpu(node=r.node, index=r.index, uuid=r.uuid, model=r.model, serial=r.serial)
                for r in s.scalars(select(GpuRow).where(GpuRow.node == node).order_by(GpuRow.index))
            ]

    def gpu_uuids(self, nodes: Collection[str] | None = None) -> dict[str, tuple[str, ...]]:
        """Each node's GPU UUIDs in index order: of every node, or of ``nodes`` (those with
        GPUs recorded)."""
        t = table_of(GpuRow)
        q = select(t.c.node, t.c.uuid).order_by(t.c.node, t.c.index)
        queries = (
            [q] if nodes is None else [q.where(t.c.node.in_(c)) for c in _chunks(sorted(nodes))]
        )
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for query in queries:
                for node, uuid in conn.execute(query):
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
            return [result_from_row(r) for r in rows]

    def results(self, node: str, limit: int = 100, check: str | None = None) -> list[CheckResult]:
        q = select(CheckResultRow).where(CheckResultRow.node == node)
        if check:
            q = q.where(CheckResultRow.check == check)
        with self._read() as s:
            rows = s.scalars(q.order_by(CheckResultRow.id.desc()).limit(limit))
            return [result_from_row(r) for r in rows]

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
            return [event_from_row(r) for r in rows]

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
        # Core rows: the ORM's objects cost most of reading 7,500 of them (0.1 s).
        t = table_of(AllocationRow)
        q = select(t.c.tenant, t.c.pool, t.c.node, t.c.gpus, t.c.job).order_by(t.c.id)
        with self.engine.connect() as conn:
            return [Allocation(*r) for r in conn.execute(q)]

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
                Pool(
                    name=r.name,
                    backend=r.backend,
                    gpu_model=r.gpu_model,
                    mode=r.mode,
                    observe_checks=tuple(r.observe_checks or ()),
                    mode_changed_at=r.mode_changed_at,
                    mode_actor=r.mode_actor,
                )
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
