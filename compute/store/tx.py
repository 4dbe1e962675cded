"""Writes: what one transaction may change, committed as one or not at all."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Result, Table, bindparam, delete, insert, select, update
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
    UtcDateTime,
)
from compute.store.rows import (
    GPU_COLUMNS,
    RESULT_COLUMNS,
    Changes,
    audit_values,
    columns_of,
    diff_changes,
    event_values,
    gpu_values,
    node_from_row,
    node_values,
    table_of,
)
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

    def versions(self, names: Collection[str] | None = None) -> dict[str, int]:
        """Every node's stored version (or those of ``names``), the rows locked until this
        transaction ends."""
        t = table_of(NodeRow)
        # In name order, as every other writer of many nodes: two never wait on each other.
        q = select(t.c.name, t.c.version).order_by(t.c.name).with_for_update()
        if names is None:
            return {name: version for name, version in self.s.execute(q)}
        out: dict[str, int] = {}
        for chunk in _chunks(sorted(names)):
            out.update({name: v for name, v in self.s.execute(q.where(t.c.name.in_(chunk)))})
        return out

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
            return node.evolve(version=node.version + 1)
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
        done = self._update_many(t, stmt, rows)
        if done is not None and done != len(rows):
            raise StaleWrite(f"{len(rows) - done} of {len(rows)} nodes changed meanwhile")

    def put_changes(self, pairs: Sequence[tuple[Node, Node]]) -> list[Node]:
        """Write each node (``after``) as changed from how it was read (``before``, at the
        version it was read at): only the columns that changed, nodes that changed nothing
        not at all, each on the condition ``put_node`` sets; nodes changing the same columns
        go in one statement batch. Returns every ``after`` as stored. One written meanwhile
        fails them all (StaleWrite): lock them first (``versions``), as ``put_nodes``."""
        return self.put_diffed(diff_changes(pairs))

    def put_diffed(self, changes: Changes) -> list[Node]:
        """``put_changes`` of pairs compared beforehand (rows.diff_changes), on the same
        conditions; returns the nodes as stored."""
        t = table_of(NodeRow)
        for columns, rows in changes.groups.items():
            stmt = (
                update(t)
                .where(t.c.name == bindparam("b_name"), t.c.version == bindparam("b_v"))
                .values(
                    {
                        **{c: bindparam(f"v_{c}", type_=t.c[c].type) for c in columns},
                        "version": t.c.version + 1,
                    }
                )
            )
            done = self._update_many(t, stmt, rows)
            if done is not None and done != len(rows):
                raise StaleWrite(f"{len(rows) - done} of {len(rows)} nodes changed meanwhile")
        return changes.stored

    def _update_many(self, table: Table, stmt: Any, rows: list[dict[str, Any]]) -> int | None:
        """``stmt`` (an UPDATE of ``table``) once per row in one statement batch; how many
        rows it changed, None where the driver cannot say for a batch. On SQLite the values
        are converted a column at a time and handed to the driver as they are (as
        ``_insert``): SQLAlchemy's per-row parameter handling cost more than SQLite's own
        work (a steady sweep of 10,240 nodes writes every node's telemetry)."""
        conn = self.s.connection()
        dialect = conn.dialect
        if dialect.name != "sqlite" or any(c.onupdate is not None for c in table.columns):
            res = self.s.execute(stmt, rows)
            return _rowcount(res) if dialect.supports_sane_multi_rowcount else None
        compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
        columns: list[list[Any]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            # A name no row gives is the statement's own literal (``version + 1``).
            values = (
                [r[name] for r in rows] if name in rows[0] else [bind.effective_value] * len(rows)
            )
            kind = bind.type
            convert = kind.dialect_impl(dialect).bind_processor(dialect)
            if convert is None:
                columns.append(values)
            elif isinstance(kind, UtcDateTime):
                columns.append(_converted_once(convert, values))
            else:
                columns.append([convert(v) for v in values])
        res = conn.exec_driver_sql(str(compiled), list(zip(*columns, strict=True)))
        # sqlite3 counts the rows every execution of a batch changed.
        return _rowcount(res)

    def add_nodes(self, nodes: Sequence[Node]) -> None:
        """Insert many new nodes at once (a fleet seen for the first time)."""
        if nodes:
            self._insert(table_of(NodeRow), [{**node_values(n), "version": 0} for n in nodes])

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
            self._insert_columns(table_of(CheckResultRow), columns_of(RESULT_COLUMNS, results))

    def add_gpus(self, gpus: Sequence[Gpu]) -> None:
        if gpus:
            self._insert_columns(table_of(GpuRow), columns_of(GPU_COLUMNS, gpus))

    def add_event(self, event: Event) -> None:
        self.add_events([event])

    def add_events(self, events: Sequence[Event]) -> None:
        # Core inserts, as results: the ORM's unit of work cost more than the rows (a first
        # sweep of 10,240 nodes writes as many events and more).
        if events:
            self._insert(table_of(EventRow), [event_values(e) for e in events])

    def add_audit(self, entry: AuditEntry) -> None:
        self.add_audits([entry])

    def add_audits(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            self._insert(table_of(AuditRow), [audit_values(a) for a in entries])

    def replace_allocations(self, allocations: Sequence[Allocation]) -> None:
        self.s.execute(delete(AllocationRow))
        if allocations:
            self._insert(
                table_of(AllocationRow),
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
            self._insert(
                table_of(RackPowerRow),
                [{"rack": p.rack, "at": p.at, "watts": p.watts} for p in samples],
            )

    def set_meta(self, key: str, value: dict[str, Any]) -> None:
        row = self.s.get(MetaRow, key)
        if row is None:
            self.s.add(MetaRow(key=key, value=value))
        else:
            row.value = value

    def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (all with the same keys) of ``table`` in one batch: the fast path
        below, for features' tables written by the thousand (power samples of every node)."""
        self._insert(table, rows)

    def _insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (all with the same keys) in one statement batch. On SQLite each
        column's values are converted (the columns' own bind processors) a column at a time
        and handed to the driver as they are: SQLAlchemy's per-row parameter handling cost
        more than SQLite's own work (a first sweep of 10,240 nodes inserts 64,521 results and
        81,920 GPUs). Elsewhere (PostgreSQL's batched VALUES) as SQLAlchemy does it."""
        if rows:
            self._insert_columns(table, {key: [r[key] for r in rows] for key in rows[0]})

    def _insert_columns(self, table: Table, columns: dict[str, list[Any]]) -> None:
        """``_insert`` of rows given a column at a time (each list as long as the others)."""
        keys = list(columns)
        if not keys or not columns[keys[0]]:
            return
        conn = self.s.connection()
        dialect = conn.dialect
        if dialect.name != "sqlite" or any(
            c.default is not None and c.key not in columns for c in table.columns
        ):  # PostgreSQL's batched VALUES, or a default only SQLAlchemy fills in
            by_row = zip(*columns.values(), strict=True)
            conn.execute(insert(table), [dict(zip(keys, row, strict=True)) for row in by_row])
            return
        compiled = insert(table).compile(dialect=dialect, column_keys=keys)
        converted: dict[str, list[Any]] = {}
        for key, values in columns.items():
            convert = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            if convert is None:
                converted[key] = values
            elif isinstance(table.c[key].type, UtcDateTime):
                converted[key] = _converted_once(convert, values)
            else:
                converted[key] = [convert(v) for v in values]
        order = compiled.positiontup or keys
        rows = list(zip(*(converted[k] for k in order), strict=True))
        conn.exec_driver_sql(str(compiled), rows)

    def put_topology(
        self,
        sites: Iterable[Site],
        rooms: Iterable[Room],
        racks: Iterable[Rack],
        pools: Iterable[Pool],
    ) -> None:
        named: list[tuple[Table, list[dict[str, Any]]]] = [
            (table_of(SiteRow), [{"name": site.name} for site in sites]),
            (table_of(RoomRow), [{"name": r.name, "site": r.site} for r in rooms]),
            (
                table_of(RackRow),
                [
                    {"name": r.name, "room": r.room, "power_budget_watts": r.power_budget_watts}
                    for r in racks
                ],
            ),
            (
                table_of(PoolRow),
                [{"name": p.name, "backend": p.backend, "gpu_model": p.gpu_model} for p in pools],
            ),
        ]
        for table, rows in named:
            self._put_by_name(table, rows)

    def _put_by_name(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Each row added, or its columns updated where its name is stored (what else the
        row holds, a pool's mode, is kept)."""
        by_name = {r["name"]: r for r in rows}
        stored: set[str] = set()
        for chunk in _chunks(sorted(by_name)):
            stored |= set(self.s.scalars(select(table.c.name).where(table.c.name.in_(chunk))))
        self._insert(table, [r for name, r in by_name.items() if name not in stored])
        for name in sorted(stored):
            self.s.execute(update(table).where(table.c.name == name).values(by_name[name]))

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
        tx.add_events(events)
        tx.add_audits(audit)

    return record


def _converted_once(convert: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """``convert`` of each value, done once per distinct value: a sweep's results share a
    few times (each a conversion to text on SQLite, the most costly column of a result)."""
    done: dict[Any, Any] = {}
    out = []
    for v in values:
        c = done.get(v, done)
        if c is done:
            c = done[v] = convert(v)
        out.append(c)
    return out


def _rowcount(res: Result[Any]) -> int:
    return int(getattr(res, "rowcount", 0) or 0)


def _chunks(names: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    # Bound parameters per statement stay under every driver's limit.
    for i in range(0, len(names), size):
        yield names[i : i + size]
