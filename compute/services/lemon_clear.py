"""An operator clears a node's lemon mark (docs/lemons.md), e.g. once the vendor replaced
the board: a ``lemon_cleared`` event and an audit entry, both with the reason and the actor.

The mark is not deleted: it stays in the node's events and its RMA report, and the clear
after it ends it (compute/services/lemons.py reads the newest of the two). As a mark does,
the clear starts the count again: only repeats after it count toward the next mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compute.domain import AuditEntry, Event, EventKind
from compute.errors import InvalidInput, NotFoundError, RefusedError
from compute.services.lemons import MARK_KINDS
from compute.store import Store
from compute.store import lemons as kept
from compute.validation import reason as valid_reason
from health.inputs import InputError

AUDIT_ACTION = "node.lemon_clear"


@dataclass(frozen=True, slots=True)
class Cleared:
    mark: Event  # the mark cleared
    clear: Event  # the lemon_cleared event written


def clear(store: Store, name: str, reason: str, actor: str, now: datetime) -> Cleared:
    """Clear ``name``'s lemon mark; NotFoundError for an unknown node, RefusedError for one
    that is not a lemon now, InvalidInput for a reason a drain would not take."""
    try:
        why = valid_reason(reason)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None
    with store.transaction() as tx:
        # The node's row locked (the whole store, on SQLite): two clears, or a clear and a
        # sweep's new mark, are judged one after the other.
        node = tx.node(name)
        if node is None:
            raise NotFoundError(f"unknown node {name!r}")
        mark = kept.newest(tx.s, name, MARK_KINDS)
        if mark is None or mark.kind != EventKind.LEMON:
            raise RefusedError(f"{name} is not marked a lemon; nothing to clear")
        detail = {"reason": why, "mark_at": mark.at.isoformat(), "mark_id": mark.id}
        event = Event(
            at=now,
            node=name,
            kind=EventKind.LEMON_CLEARED,
            reason=f"lemon mark of {mark.at:%Y-%m-%d %H:%M} cleared: {why}",
            actor=actor,
            pool=node.pool,
            detail=detail,
        )
        tx.add_event(event)
        tx.add_audit(
            AuditEntry(at=now, actor=actor, action=AUDIT_ACTION, target=name, detail=detail)
        )
    return Cleared(mark=mark, clear=event)


def cleared_view(c: Cleared) -> dict[str, Any]:
    """What the API and `nodes clear-lemon` answer: the node, the mark cleared, the clear."""
    return {
        "node": c.clear.node,
        "cleared_at": c.clear.at.isoformat(),
        "reason": c.clear.detail["reason"],
        "actor": c.clear.actor,
        "mark": {"at": c.mark.at.isoformat(), "reason": c.mark.reason},
    }
