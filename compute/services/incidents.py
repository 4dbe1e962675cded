"""Incidents of the brake for shared causes: listed, shown, and released by an operator,
after which automated drains there proceed again (a later burst opens a new incident).

A shared cause is a rack, a leaf switch or a pool (compute/services/gate.py holds drains
there), or an NVLink domain (compute/services/nvlink_domains.py): a domain's fault is
known to be the domain's, so its incident records the domain drained as one unit (or held
by the drain budget, the brake or observe mode) rather than holding drains. Releasing it
says the domain was seen to; a later fault there opens a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from compute.clock import Clock
from compute.domain import AuditEntry, Node
from compute.errors import NotFoundError, RefusedError
from compute.store import Store
from compute.store import incidents as kept
from compute.store.incidents import OPEN, RELEASED, Incident
from compute.store.models import IncidentRow

STATES = (OPEN, RELEASED)
DOMAIN = "domain"
SCOPE_KINDS = ("rack", "switch", "pool", DOMAIN)
DOMAIN_CAUSE = "nvlink_domain"
# Reasons a domain was held, kept on its incident (the budget's room changes sweep by sweep).
MAX_NOTES = 20


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


def domain_draft(
    domain: str, members: Sequence[str], failing: Sequence[str], nodes: Sequence[Node], at: datetime
) -> Incident:
    """The incident for a faulted NVLink domain, before anything is done about it."""
    racks = sorted({n.rack for n in nodes if n.rack})
    pools = sorted({n.pool for n in nodes})
    return Incident(
        id=0,
        scope_kind=DOMAIN,
        scope=domain,
        pool=pools[0] if pools else "",
        opened_at=at,
        cause=DOMAIN_CAUSE,
        summary=(
            f"{len(failing)} of {len(members)} nodes of NVLink domain {domain} "
            f"(rack {', '.join(racks) or 'unknown'}) fail their nvlink check: suspected the "
            "domain's NVLink fabric (a switch tray); the domain is taken out as one unit"
        ),
        evidence={
            "failing": list(failing),
            "members": list(members),
            "racks": racks,
            "pools": pools,
            "drained": [],
            "waiting": [],
        },
        nodes=tuple(failing),
        state=OPEN,
        held=0,
        released_at=None,
        released_by="",
    )


def open_domain(store: Store, draft: Incident) -> tuple[Incident, bool]:
    """The domain's open incident: ``draft`` opened now (True), or the one already open."""
    with store.transaction() as tx:
        opened = kept.open_incident(tx, draft)
    if opened is not None:
        return get_incident(store, opened), True
    found = kept.scope_incidents(store, [(draft.scope_kind, draft.scope)], draft.opened_at)
    current = next((i for i in found if i.state == OPEN), None)
    if current is None:  # released between the two reads: the next sweep opens a new one
        raise RefusedError(f"the incident of NVLink domain {draft.scope} was just released")
    return current, False


def note_domain(
    store: Store, id_: int, drained: Sequence[str], held: str, held_nodes: int, at: datetime
) -> None:
    """Record on the domain's incident what was drained as one unit, or why it was held
    (``held_nodes``: how many nodes wait in service; the latest MAX_NOTES reasons kept)."""
    with store.transaction() as tx:
        row = tx.s.get(IncidentRow, id_)
        if row is None:
            return
        evidence = dict(row.evidence)
        if drained:
            evidence["drained"] = [
                *evidence.get("drained", []),
                *({"node": n, "at": at.isoformat()} for n in drained),
            ]
            row.nodes = sorted({*(row.nodes or []), *drained})
        if held:
            notes = [*evidence.get("waiting", []), {"why": held, "at": at.isoformat()}]
            evidence["waiting"] = notes[-MAX_NOTES:]
        row.held = held_nodes if held else 0
        evidence["last_held"] = held
        row.evidence = evidence
