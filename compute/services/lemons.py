"""Lemons: nodes that come back from repair and fail again, and again (docs/lemons.md).

Judged from the node's events alone, oldest first:

* a node *returns from repair* when it is resumed (``resume``, or a drain lifted outside
  computectl) after a ``repair`` event;
* it *fails again* at the first failure after such a return: an automated drain for a
  check (cause ``fatal`` or ``consecutive``) or a failed burn-in (a periodic checkup). An
  operator's drain is not a failure: maintenance drains would make lemons of healthy
  nodes. A failure without a repair before it is an ordinary fault, not a repeat;
* [lemons] failures such repeats within window_days, counted since the node's last lemon
  mark or its clear, make it a lemon: one ``lemon`` event (the mark: what `nodes
  list|show`, the RMA report and /metrics read) and one audit entry. Marked once per
  episode: the repeats a mark counted are not counted again;
* an operator may clear the mark (compute/services/lemon_clear.py): a ``lemon_cleared``
  event after it ends the mark and, as a mark does, the count: only repeats after it count
  toward the next mark. Both events stay in the node's history.

By [lemons] action, a lemon is flagged, escalated (its RMA report then carries its whole
history), or also retired through the existing retire transition once it is drained or in
repair and the drain is computectl's (a drain someone else made is theirs to end).
Run after each sweep by the acting control plane.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from compute.config_lemons import LemonAction, LemonSettings
from compute.domain import AUTOMATION, AuditEntry, Event, EventKind
from compute.errors import ComputeError
from compute.store import Store
from compute.store import lemons as kept
from health.policy import DrainOwner, Lifecycle

if TYPE_CHECKING:
    from compute.runtime import Runtime
    from compute.services.nodes import NodeService
    from compute.store.repository import Tx

FAILURE_KINDS = (EventKind.DRAIN, EventKind.BURN_IN_FAILED)
RETURN_KINDS = (EventKind.RESUME, EventKind.EXTERNAL_RESUME)
# A mark and its clear: the newest of a node's says whether it is a lemon now.
MARK_KINDS = (EventKind.LEMON, EventKind.LEMON_CLEARED)
# Every kind the judgement reads; the rest of a node's history does not change it.
JUDGED_KINDS = (*FAILURE_KINDS, *RETURN_KINDS, EventKind.REPAIR, *MARK_KINDS)
# Drains for a check; an operator's drain ("operator") or a drain that only moved work on
# (no cause) is not a failure.
_FAILING_CAUSES = ("fatal", "consecutive")
# A lemon is retired from these states only (NodeService.retire's own rule).
_RETIRABLE = (Lifecycle.DRAINED, Lifecycle.REPAIR)


def is_failure(e: Event) -> bool:
    if e.kind == EventKind.BURN_IN_FAILED:
        return True
    return e.kind == EventKind.DRAIN and e.detail.get("cause") in _FAILING_CAUSES


def repeat_failures(events: Iterable[Event]) -> list[Event]:
    """The failures after a return from repair, since the last lemon mark or clear (events
    oldest first): one per return, however many failures the episode that follows has."""
    repaired = returned = False
    found: list[Event] = []
    for e in events:
        if e.kind in MARK_KINDS:
            found = []
        elif e.kind == EventKind.REPAIR:
            repaired, returned = True, False
        elif e.kind in RETURN_KINDS:
            returned, repaired = repaired, False
        elif returned and is_failure(e):
            found.append(e)
            returned = False
    return found


@dataclass(frozen=True, slots=True)
class LemonCase:
    node: str
    failures: tuple[Event, ...]  # the repeats counted, oldest first


def judge(
    node: str, events: Sequence[Event], now: datetime, cfg: LemonSettings
) -> LemonCase | None:
    """A new lemon mark for ``node`` (its events oldest first), or None."""
    since = now - timedelta(days=cfg.window_days)
    counted = tuple(f for f in repeat_failures(events) if f.at >= since)
    return LemonCase(node, counted) if len(counted) >= cfg.failures else None


def mark(case: LemonCase, pool: str, now: datetime, cfg: LemonSettings) -> Event:
    times = [f.at for f in case.failures]
    return Event(
        at=now,
        node=case.node,
        kind=EventKind.LEMON,
        reason=(
            f"lemon: failed again after repair {len(times)} times in {cfg.window_days} days "
            f"({', '.join(f'{t:%Y-%m-%d %H:%M}' for t in times)}); action {cfg.action.value}"
        ),
        actor=AUTOMATION,
        pool=pool,
        detail={
            "action": cfg.action.value,
            "failures": [t.isoformat() for t in times],
            "causes": [f.reason for f in case.failures],
            "threshold": cfg.failures,
            "window_days": cfg.window_days,
        },
    )


@dataclass
class LemonScan:
    flagged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def scan(store: Store, nodes: NodeService, cfg: LemonSettings, now: datetime) -> LemonScan:
    out = LemonScan()
    since = now - timedelta(days=cfg.window_days)
    # A node needs at least `failures` failure events in the window to qualify at all.
    for name in kept.busy_nodes(store, FAILURE_KINDS, since, cfg.failures):
        node = store.node(name)
        if node is None or node.state is Lifecycle.RETIRED:
            continue
        events = kept.history(store, name, JUDGED_KINDS)
        case = judge(name, events, now, cfg)
        if case is None:
            continue
        event = mark(case, node.pool, now, cfg)
        seen = next((e.id for e in reversed(events) if e.kind in MARK_KINDS), None)
        with store.transaction() as tx:
            # The node's row locked, as an operator's clear locks it: a clear written since
            # the history was read starts the count again, so this judgement is void.
            tx.node(name)
            if _newest_mark_id(tx, name) != seen:
                continue
            tx.add_event(event)
            tx.add_audit(
                AuditEntry(
                    at=now,
                    actor=AUTOMATION,
                    action="node.lemon",
                    target=name,
                    detail=dict(event.detail),
                )
            )
        out.flagged.append(name)
    if cfg.action is LemonAction.RETIRE:
        _retire_due(store, nodes, out)
    return out


def _newest_mark_id(tx: Tx, name: str) -> int | None:
    newest = kept.newest(tx.s, name, MARK_KINDS)
    return None if newest is None else newest.id


def _retire_due(store: Store, nodes: NodeService, out: LemonScan) -> None:
    """Retire every lemon marked for it that is out of service by computectl's own drain;
    one still serving or draining waits for that (it is retired at a later sweep)."""
    for name, e in marks(store).items():
        if e.detail.get("action") != LemonAction.RETIRE.value:
            continue
        node = store.node(name)
        if node is None or node.state not in _RETIRABLE:
            continue
        if node.drain_owner is DrainOwner.EXTERNAL:
            continue
        try:
            nodes.retire(name, actor=AUTOMATION)
        except ComputeError as exc:  # changed meanwhile: the next sweep looks again
            out.errors.append(f"lemons: {name} not retired: {exc}")
        else:
            out.retired.append(name)


def marks(store: Store) -> dict[str, Event]:
    """Each lemon's mark: the newest mark of each node marked and not cleared since."""
    newest = kept.marked(store, MARK_KINDS)
    return {name: e for name, e in newest.items() if e.kind == EventKind.LEMON}


def mark_of(store: Store, node: str) -> Event | None:
    """The node's mark if it is a lemon now, or None (one narrow read: `nodes show`)."""
    return current(store.events(node=node, kinds=MARK_KINDS, limit=1))


def current(newest_first: Sequence[Event]) -> Event | None:
    """The mark in force among a node's marks and clears (newest first), or None."""
    head = next(iter(newest_first), None)
    return head if head is not None and head.kind == EventKind.LEMON else None


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane; what could not be done, one line each."""
    return scan(rt.store, rt.nodes, rt.settings.lemons, rt.clock.now()).errors
