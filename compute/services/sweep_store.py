"""Storing what a sweep learnt so that one node's bad data never stops the others.

The fast path is one transaction for the whole fleet. If the store refuses it,
each node is stored on its own; a node refused again is stored with its text made
safe (compute.services.safe_text); a node refused even then is skipped this sweep
and reported (event, metric, log), and every other node is still stored and acted on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from compute.domain import AUTOMATION, Event, EventKind, Node
from compute.services.safe_text import safe, safe_event, safe_node, safe_result
from compute.store import Store
from compute.store.repository import Tx
from health.result import CheckResult

log = logging.getLogger("computectl")


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
    try:
        with store.transaction() as tx:
            tx.add_nodes([nodes[name] for name in sorted(added)])
            tx.add_results(results)
            fleet(tx)
            # Last, so that the rows stay locked (PostgreSQL) only as long as they are written.
            versions = tx.versions()
            same: list[Node] = []
            stale: set[str] = set()
            for name, node in nodes.items():
                if name not in added:
                    if versions.get(name) == node.version:
                        same.append(node)
                    else:
                        stale.add(name)
            written = _put(tx, same, read)
            redone = {fresh.name: tx.put_node(redo(fresh)) for fresh in tx.nodes(stale)}
            tx.add_events([ev for ev in events if ev.node not in stale])
        for node in written:
            nodes[node.name] = node
        nodes.update(redone)
        return len(results)
    except Exception as exc:  # one bad row fails the batch: find it, keep the rest
        log.warning("storing the sweep in one transaction failed (%s); node by node", exc)
    with store.transaction() as tx:
        fleet(tx)
    by_node: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        by_node[r.node].append(r)
    events_of: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        events_of[ev.node].append(ev)
    stored = 0
    for name in sorted(nodes):
        node, rs, evs = nodes[name], by_node.get(name, []), events_of.get(name, [])
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


def _put(tx: Tx, nodes: list[Node], read: Mapping[str, Node] | None) -> list[Node]:
    """``nodes`` written on the versions they were read at; returns them as stored."""
    if read is None:
        tx.put_nodes(nodes)
        return [n.evolve(version=n.version + 1) for n in nodes]
    pairs = [(read[n.name], n) for n in nodes if read[n.name].version == n.version]
    whole = [n for n in nodes if read[n.name].version != n.version]
    tx.put_nodes(whole)
    return tx.put_changes(pairs) + [n.evolve(version=n.version + 1) for n in whole]


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
