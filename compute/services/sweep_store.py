"""Storing what a sweep learnt so that one node's bad data never stops the others.

The fast path is one transaction per CHUNK nodes (in name order). If the store refuses
one, each of its nodes is stored on its own; a node refused again is stored with its text
made safe (compute.services.safe_text); a node refused even then is skipped this sweep
and reported (event, metric, log), and every other node is still stored and acted on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from compute.domain import AUTOMATION, Event, EventKind, Node
from compute.services.safe_text import safe, safe_event, safe_node, safe_result
from compute.store import Store
from compute.store.repository import Tx
from compute.store.rows import Changes, diff_changes
from health.result import CheckResult

log = logging.getLogger("computectl")

# Nodes stored per transaction. SQLite has one writer at a time: a node's report waited for
# the whole fleet's write (0.25-0.57 s of the lock at 10,240 nodes on a quiet machine, more
# under load); a chunk of 512 holds it a twentieth of that, for ~0.05 s more in all (256:
# ~0.2 s more). Each chunk's writes are conditional on the versions read in it, so nothing
# is written over what another writer stored meanwhile.
CHUNK = 512


def store_learnt(
    store: Store,
    nodes: dict[str, Node],
    added: set[str],
    results: Sequence[CheckResult],
    events: Sequence[Event],
    skipped: dict[str, str],
    fleet: Callable[[Tx], None],
    redo: Callable[[Node], Node],
    *,
    read: Mapping[str, Node] | None = None,
) -> int:
    """Store every node, result and event, and what ``fleet`` writes (allocations, power);
    returns how many results were stored and adds to ``skipped`` each node that could not be.
    With ``read`` (each node as the sweep read it), a node is written only where it changed
    (Tx.put_changes): most of a steady sweep's nodes change their telemetry alone.

    Each node is written only if nobody wrote it since the sweep read it. One written
    meanwhile (a posted result, an operator's drain) is redone: ``redo`` applies what the
    sweep learnt of it to the node as stored now, and the sweep's events about it are
    dropped (they were judged on what was read; the next sweep judges again). ``nodes`` ends
    as stored."""
    with store.transaction() as tx:
        fleet(tx)
    by_node: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        by_node[r.node].append(r)
    events_of: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        events_of[ev.node].append(ev)
    learnt = _Learnt(nodes, added, by_node, events_of, redo)
    names = sorted(nodes)
    stored = 0
    for i in range(0, len(names), CHUNK):
        part = names[i : i + CHUNK]
        try:
            stored += _store_chunk(store, learnt, part, read)
        except Exception as exc:  # one bad row fails the chunk: find it, keep the rest
            log.warning(
                "storing %d nodes in one transaction failed (%s); one by one", len(part), exc
            )
            stored += _store_each(store, learnt, part, skipped)
    # Results and events of nodes the sweep does not hold (none, today): as one node.
    rest = sorted((set(by_node) | set(events_of)) - set(nodes))
    if rest:
        try:
            with store.transaction() as tx:
                tx.add_results([r for name in rest for r in by_node.get(name, [])])
                tx.add_events([ev for name in rest for ev in events_of.get(name, [])])
            stored += sum(len(by_node.get(name, [])) for name in rest)
        except Exception:
            log.exception("results and events of %d unknown nodes could not be stored", len(rest))
    return stored


@dataclass(frozen=True, slots=True)
class _Learnt:
    """What one sweep stores: its nodes (updated as stored), those it saw for the first time,
    results and events by node, and how a node written meanwhile is redone."""

    nodes: dict[str, Node]
    added: set[str]
    by_node: Mapping[str, list[CheckResult]]
    events_of: Mapping[str, list[Event]]
    redo: Callable[[Node], Node]


def _store_chunk(
    store: Store, learnt: _Learnt, part: list[str], read: Mapping[str, Node] | None
) -> int:
    nodes, by_node, events_of = learnt.nodes, learnt.by_node, learnt.events_of
    results = [r for name in part for r in by_node.get(name, [])]
    known = [nodes[name] for name in part if name not in learnt.added]
    # Compared before the transaction, as if nobody wrote these nodes meanwhile (compared
    # again inside for the rest where someone did): the comparison was most of the time a
    # chunk held SQLite's one write lock, while the API's reports waited for it.
    plan = _plan(known, read)
    with store.transaction() as tx:
        tx.add_nodes([nodes[name] for name in part if name in learnt.added])
        tx.add_results(results)
        # Last, so that the rows stay locked (PostgreSQL) only as long as they are written.
        versions = tx.versions([n.name for n in known])
        stale = {n.name for n in known if versions.get(n.name) != n.version}
        if stale:
            plan = _plan([n for n in known if n.name not in stale], read)
        written = _write(tx, plan)
        redone = {fresh.name: tx.put_node(learnt.redo(fresh)) for fresh in tx.nodes(stale)}
        tx.add_events([ev for name in part if name not in stale for ev in events_of.get(name, [])])
    for node in written:
        nodes[node.name] = node
    nodes.update(redone)
    return len(results)


def _store_each(store: Store, learnt: _Learnt, part: list[str], skipped: dict[str, str]) -> int:
    nodes, added, redo = learnt.nodes, learnt.added, learnt.redo
    stored = 0
    for name in part:
        node, rs, evs = nodes[name], learnt.by_node.get(name, []), learnt.events_of.get(name, [])
        try:
            nodes[name] = _store_one(store, node, name in added, rs, evs, redo)
        except Exception as first:
            try:
                nodes[name] = _store_one(
                    store,
                    safe_node(node),
                    name in added,
                    [safe_result(r) for r in rs],
                    [safe_event(e) for e in evs],
                    lambda fresh: safe_node(redo(fresh)),
                )
            except Exception:
                log.exception("%s: could not be stored", name)
                skipped[name] = f"could not be stored: {type(first).__name__}: {safe(str(first))}"
                continue
        stored += len(rs)
    return stored


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a chunk's nodes are written: as changed from how the sweep read them
    (``changes``), or whole (no copy read at their version, or no copies at all)."""

    changes: Changes | None
    whole: list[Node]


def _plan(nodes: list[Node], read: Mapping[str, Node] | None) -> _Plan:
    if read is None:
        return _Plan(None, nodes)
    pairs = [(read[n.name], n) for n in nodes if read[n.name].version == n.version]
    whole = [n for n in nodes if read[n.name].version != n.version]
    return _Plan(diff_changes(pairs), whole)


def _write(tx: Tx, plan: _Plan) -> list[Node]:
    """``plan``'s nodes written on the versions they were read at; returns them as stored."""
    tx.put_nodes(plan.whole)
    diffed = tx.put_diffed(plan.changes) if plan.changes is not None else []
    return diffed + [n.evolve(version=n.version + 1) for n in plan.whole]


def _store_one(
    store: Store,
    node: Node,
    new: bool,
    results: list[CheckResult],
    events: list[Event],
    redo: Callable[[Node], Node],
) -> Node:
    with store.transaction() as tx:
        fresh = None if new else tx.node(node.name)
        if fresh is None:
            tx.add_nodes([node])
            stored = node
        elif fresh.version == node.version:
            stored = tx.put_node(node)
        else:
            stored, events = tx.put_node(redo(fresh)), []
        tx.add_results(results)
        for ev in events:
            tx.add_event(ev)
    return stored


def record_skipped(
    store: Store, now: datetime, nodes: Mapping[str, Node], skipped: Mapping[str, str]
) -> None:
    """An event per skipped node, where the store takes one at all."""
    for name, why in sorted(skipped.items()):
        try:
            with store.transaction() as tx:
                tx.add_event(
                    Event(
                        at=now,
                        node=name,
                        kind=EventKind.NODE_SKIPPED,
                        reason=safe(why)[:500],
                        actor=AUTOMATION,
                        pool=nodes[name].pool if name in nodes else "",
                    )
                )
        except Exception:
            log.exception("%s: could not record that it was skipped", name)
