"""Rows to domain types and back: the one place a table's columns meet a dataclass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Row, Table

from compute.domain import NODE_FIELDS, SUMMARY_FIELDS, AuditEntry, Event, Gpu, Node, NodeSummary
from compute.store.models import Base, CheckResultRow, EventRow, NodeRow
from health.policy import DrainOwner, Lifecycle, NodeHealth
from health.result import CheckResult, Status, Suite


@dataclass(frozen=True, slots=True)
class TenantRecord:
    name: str
    spec: dict[str, Any]
    state: str
    created_at: datetime
    updated_at: datetime


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# A table's columns, each with what reads it from the domain object a row is made of.
Readers = tuple[tuple[str, Callable[[Any], Any]], ...]


def values_of(readers: Readers, item: Any) -> dict[str, Any]:
    """One object's row."""
    return {column: read(item) for column, read in readers}


def columns_of(readers: Readers, items: Sequence[Any]) -> dict[str, list[Any]]:
    """Many objects' rows a column at a time (Tx._insert_columns): at 10,240 nodes a first
    sweep inserts 107,000 results and 81,920 GPUs, whose dicts cost more than their
    columns (results 0.20 -> 0.06 s to build)."""
    return {column: list(map(read, items)) for column, read in readers}


GPU_COLUMNS: Readers = tuple(
    (name, attrgetter(name)) for name in ("node", "index", "uuid", "model", "serial")
)


def gpu_values(g: Gpu) -> dict[str, Any]:
    return values_of(GPU_COLUMNS, g)


def node_from_row(r: NodeRow | Row[Any]) -> Node:
    # Positional, in Node's field order: a sweep reads every node of the site (twice with
    # the energy accrual after it), and keywords cost a third more.
    owner = r.drain_owner
    return Node(
        r.name,
        r.pool,
        r.rack,
        r.gpu_model,
        r.gpu_count,
        Lifecycle(r.state),
        r.state_since,
        r.drain_reason,
        DrainOwner(owner) if owner else None,
        r.drain_actor,
        r.automation_drain,
        r.deferred_reason,
        r.jobs_running,
        r.gpus_allocated,
        r.backend_state,
        r.power_watts,
        r.last_seen,
        r.last_checked_at,
        NodeHealth.from_json(r.health),
        r.version,
        r.attention_at,
        r.would,
        r.switch,
    )


def summary_columns(t: Table) -> list[Any]:
    """The nodes table's columns a NodeSummary is made of, in its field order."""
    return [t.c[name] for name in SUMMARY_FIELDS]


def summary_from_row(r: Sequence[Any]) -> NodeSummary:
    (name, pool, rack, model, count, state, since, reason, owner, deferred, jobs, alloc) = r
    return NodeSummary(
        name,
        pool,
        rack,
        model,
        count,
        Lifecycle(state),
        since,
        reason,
        DrainOwner(owner) if owner else None,
        deferred,
        jobs,
        alloc,
    )


def node_values(n: Node) -> dict[str, Any]:
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
        "attention_at": n.attention_at,
        "would": n.would,
        "switch": n.switch,
    }


# A node's columns besides its key and version, as Node names them.
NODE_COLUMNS = tuple(c for c in NODE_FIELDS if c not in ("name", "version"))
_read_columns = attrgetter(*NODE_COLUMNS)


def changed_columns(before: Node, after: Node) -> tuple[str, ...]:
    """The columns ``after`` changes of ``before`` (the same node), in NODE_COLUMNS order."""
    # Every column of each read at once (one call each, not 21 getattr each).
    pairs = zip(NODE_COLUMNS, _read_columns(before), _read_columns(after), strict=True)
    out = tuple(c for c, was, now in pairs if was != now)
    if "health" in out and same_health(before.health, after.health):
        out = tuple(c for c in out if c != "health")
    return out


@dataclass(frozen=True, slots=True)
class Changes:
    """Nodes' changed columns, worked out before the transaction that writes them: the
    comparison held SQLite's write lock for most of a sweep chunk's time (Tx.put_diffed).
    ``groups``: per set of changed columns, each node's new values and the version it was
    read at; ``stored``: every node as it will be once written."""

    groups: dict[tuple[str, ...], list[dict[str, Any]]]
    stored: list[Node]


def diff_changes(pairs: Sequence[tuple[Node, Node]]) -> Changes:
    """Each ``after`` against ``before`` (the same node as read): what Tx.put_diffed writes."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    stored: list[Node] = []
    for before, after in pairs:
        columns = changed_columns(before, after)
        if not columns:
            stored.append(after)
            continue
        row = {f"v_{c}": column_value(after, c) for c in columns}
        row["b_name"], row["b_v"] = after.name, after.version
        groups.setdefault(columns, []).append(row)
        stored.append(after.evolve(version=after.version + 1))
    return Changes(groups, stored)


def same_health(a: NodeHealth, b: NodeHealth) -> bool:
    """Whether the two store the same (folding keeps no streak of zero, as storing does:
    tests/unit/test_policy_histories.py holds every history's memory to its stored JSON)."""
    # What a sweep changes in nearly every node, first: the figures of its last checks.
    return a.last_values == b.last_values and a == b


def column_value(n: Node, column: str) -> Any:
    """One column's value of ``n``, as ``node_values`` gives it."""
    match column:
        case "state":
            return n.state.value
        case "drain_owner":
            return n.drain_owner.value if n.drain_owner else None
        case "health":
            return n.health.to_json()
    return getattr(n, column)


def event_values(e: Event) -> dict[str, Any]:
    return {
        "at": e.at,
        "node": e.node,
        "kind": e.kind,
        "reason": e.reason,
        "actor": e.actor,
        "pool": e.pool,
        "detail": dict(e.detail),
    }


def audit_values(a: AuditEntry) -> dict[str, Any]:
    return {
        "at": a.at,
        "actor": a.actor,
        "action": a.action,
        "target": a.target,
        "detail": dict(a.detail),
    }


def _status(r: CheckResult) -> str:
    return r.status.value


def _suite(r: CheckResult) -> str:
    return r.suite.value


def _values(r: CheckResult) -> dict[str, Any]:
    return r.values if isinstance(r.values, dict) else dict(r.values)


def _gpus(r: CheckResult) -> str:
    return ",".join(map(str, r.gpus)) if r.gpus else ""


RESULT_COLUMNS: Readers = (
    ("node", attrgetter("node")),
    ("check", attrgetter("check")),
    ("version", attrgetter("version")),
    ("status", _status),
    ("suite", _suite),
    ("fatal", attrgetter("fatal")),
    ("evidence", attrgetter("evidence")),
    ("values", _values),
    ("gpus", _gpus),
    ("at", attrgetter("at")),
)


def result_values(r: CheckResult) -> dict[str, Any]:
    return values_of(RESULT_COLUMNS, r)


def result_from_row(r: CheckResultRow) -> CheckResult:
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


def event_from_row(r: EventRow) -> Event:
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
