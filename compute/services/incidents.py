"""Incidents of the brake for shared causes: listed, shown, and released by an operator,
after which automated drains there proceed again (a later burst opens a new incident)."""

from __future__ import annotations

from typing import Any

from compute.clock import Clock
from compute.domain import AuditEntry
from compute.errors import NotFoundError, RefusedError
from compute.store import Store
from compute.store import incidents as kept
from compute.store.incidents import OPEN, RELEASED, Incident

STATES = (OPEN, RELEASED)


def list_incidents(store: Store, state: str | None = None, limit: int = 100) -> list[Incident]:
    return kept.incidents(store, state, limit)


def get_incident(store: Store, id_: int) -> Incident:
    found = kept.incident(store, id_)
    if found is None:
        raise NotFoundError(f"no incident {id_}")
    return found


def release(store: Store, clock: Clock, id_: int, actor: str) -> Incident:
    """Release the brake of an open incident (audited)."""
    inc = get_incident(store, id_)
    now = clock.now()
    with store.transaction() as tx:
        if not kept.release(tx, id_, now, actor):
            raise RefusedError(f"incident {id_} is already released")
        tx.add_audit(
            AuditEntry(
                at=now,
                actor=actor,
                action="incident.release",
                target=f"incident/{id_}",
                detail={"scope": f"{inc.scope_kind} {inc.scope}", "held": inc.held},
            )
        )
    return get_incident(store, id_)


def incident_view(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "scope_kind": i.scope_kind,
        "scope": i.scope,
        "pool": i.pool,
        "opened_at": i.opened_at.isoformat(),
        "cause": i.cause,
        "summary": i.summary,
        "evidence": i.evidence,
        "nodes": list(i.nodes),
        "state": i.state,
        "held": i.held,
        "released_at": i.released_at.isoformat() if i.released_at else None,
        "released_by": i.released_by,
    }
