"""The gate every automated decision passes right before it is carried out.

Two things stop a decision here. Observe mode: a pool (or one check in an enforcing pool)
that operators have not yet let computectl act on gets the decision recorded as what would
have been done (a ``would_act`` event, once per node and decision) and nothing reaches its
workload manager. The brake: when drains decided in one rack, leaf switch or pool pile up
within a few minutes, the cause is more likely shared (power, cooling, the fabric, a driver
rollout) than many nodes failing at once; draining them all would take the capacity out for
nothing the nodes did. The brake opens one incident naming the suspected cause, holds further
automated drains there (``drain_held``; the node stays in service), and lets the drains that
already happened stand, until an operator releases it. A rack over its power budget
(compute/services/rack_budgets.py): no burn-in starts in it, so nodes back from repair wait
(``power_held``, once per node and decision), until it is back under.

Operators' own commands never pass here: they act.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from compute.clock import Clock
from compute.config_sections import BrakeSettings
from compute.domain import AUTOMATION, Event, Node, Pool
from compute.services.brake import brake_verdict, brake_window, scopes_of
from compute.store import Store
from compute.store import incidents as kept
from compute.store import topology as racks_kept
from compute.store.incidents import OPEN, Incident
from compute.store.repository import Tx
from health.policy import Action, Decision

log = logging.getLogger("computectl")

WOULD_ACT = "would_act"
DRAIN_HELD = "drain_held"
POWER_HELD = "power_held"
# What adds load to a rack: held while it is over its power budget. A node back from repair
# goes through burn-in first, so it waits too; one whose burn-in already passed returns (a
# node left in burn-in would only stall).
LOAD_ACTIONS = frozenset({Action.START_BURN_IN, Action.CHECKUP})
OBSERVE, ENFORCE = "observe", "enforce"
# Pools' modes are read at most this often (seconds): a first sweep of a large fleet decides
# for every node. An operator's change, from any process, takes effect within this.
MODE_TTL_SECONDS = 1.0
# How many nodes each rack, switch and pool holds is read (all in one grouped query) at most
# this often (seconds): a count per scope per drain decision was a third of a drain's cost in
# a sweep of 10,240 nodes, and the brake's thresholds are fractions of sizes that change only
# as nodes come and go.
SIZE_TTL_SECONDS = 30.0

# What reaches the workload manager. Recording that a drain finished (mark_drained) or that
# a burn-in stalled changes nothing there, so an operator's drain still completes in observe.
BACKEND_ACTIONS = frozenset(
    {
        Action.DRAIN,
        Action.START_BURN_IN,
        Action.CHECKUP,
        Action.RESUME,
        Action.REPAIR,
        Action.CONTINUE_DRAIN,
    }
)


def observed(pool: Pool | None, decision: Decision) -> bool:
    """Whether ``decision`` is only to be recorded: its pool, or its check, is observed."""
    if pool is None or decision.action not in BACKEND_ACTIONS:
        return False
    return pool.mode == OBSERVE or (
        decision.check is not None and decision.check in pool.observe_checks
    )


def would_key(decision: Decision) -> str:
    """A decision as ``nodes.would`` remembers it: "drain:xid", "start_burn_in"."""
    action = decision.action.value
    return f"{action}:{decision.check}" if decision.check else action


class Gate:
    """``admit`` each automated decision, under the act lock, right before acting on it."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        brake: BrakeSettings,
        mode_ttl: float = MODE_TTL_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.brake = brake
        self.mode_ttl = mode_ttl
        self._pools: dict[str, Pool | None] = {}
        self._pools_at = -math.inf
        self._sizes: dict[tuple[str, str], int] = {}
        self._sizes_at = -math.inf
        self._drains = kept.DrainLog(store)
        self._over: frozenset[str] = frozenset()
        self._over_at = -math.inf

    def admit(self, node: Node, decision: Decision) -> Decision:
        """``decision`` unchanged, or no action once observe mode or the brake has it."""
        if not decision.acts:
            if decision.action is Action.NONE and node.would:
                self._remember(node, "")
            return decision
        if observed(self._pool(node.pool), decision):
            event = self._would_event(node, decision)
            self._remember(node, would_key(decision), lambda tx, _n: tx.add_event(event))
            return Decision(node.name, Action.NONE, f"observe: would {decision.action.value}")
        if decision.action in LOAD_ACTIONS and node.rack in self._over_racks():
            return self._power_hold(node, decision)
        if decision.action is Action.DRAIN and decision.check:
            held = self._brake(node, decision)
            if held is not None:
                return Decision(node.name, Action.NONE, f"held by incident {held}")
        return decision

    def forget_pools(self) -> None:
        """Read pools' modes afresh at the next decision (a mode changed in this process)."""
        self._pools_at = -math.inf

    def _pool(self, name: str) -> Pool | None:
        if time.monotonic() - self._pools_at > self.mode_ttl:
            self._pools = {p.name: p for p in self.store.pools()}
            self._pools_at = time.monotonic()
        return self._pools.get(name)

    def _over_racks(self) -> frozenset[str]:
        """Racks over their power budgets whose standing asks to hold load (read at most
        every mode_ttl seconds: the judgement is made once per sweep)."""
        if time.monotonic() - self._over_at > self.mode_ttl:
            found = racks_kept.over_racks(self.store)
            self._over = frozenset(r for r, st in found.items() if st.detail.get("hold", True))
            self._over_at = time.monotonic()
        return self._over

    def _power_hold(self, node: Node, decision: Decision) -> Decision:
        reason = f"rack {node.rack} over its power budget"
        event = Event(
            at=self.clock.now(),
            node=node.name,
            kind=POWER_HELD,
            reason=reason,
            actor=AUTOMATION,
            pool=node.pool,
            detail={"rack": node.rack, "action": decision.action.value},
        )
        key = f"power:{node.rack}:{would_key(decision)}"
        self._remember(node, key, lambda tx, _n: tx.add_event(event))
        return Decision(node.name, Action.NONE, reason)

    def _size(self, scope: tuple[str, str]) -> int:
        if time.monotonic() - self._sizes_at > SIZE_TTL_SECONDS:
            self._sizes = self.store.scope_sizes()  # every scope's in one query
            self._sizes_at = time.monotonic()
        return self._sizes.get(scope, 0)

    def _remember(
        self, node: Node, would: str, record: Callable[[Tx, Node], None] | None = None
    ) -> None:
        """Record ``would`` on the node as stored now, and with it (same transaction)
        ``record``'s events, only if it is news: once per node and decision."""

        def change(fresh: Node) -> Node | None:
            return None if fresh.would == would else fresh.evolve(would=would)

        self.store.update_node(node.name, change, record=record)

    def _would_event(self, node: Node, decision: Decision) -> Event:
        return Event(
            at=self.clock.now(),
            node=node.name,
            kind=WOULD_ACT,
            reason=decision.reason,
            actor=AUTOMATION,
            pool=node.pool,
            detail={
                "action": decision.action.value,
                "check": decision.check,
                "reason": decision.reason,
                "mode": OBSERVE,
            },
        )

    def _brake(self, node: Node, decision: Decision) -> int | None:
        """The incident holding this drain, if the brake holds it."""
        check = decision.check or ""
        now = self.clock.now()
        scopes = scopes_of(node)
        since = now - brake_window(self.brake)
        incidents = kept.scope_incidents(self.store, scopes, since)
        verdict = brake_verdict(
            node,
            check,
            now,
            self._drains.since(since),
            {s: self._size(s) for s in scopes},
            incidents,
            self.brake,
        )
        if verdict.held_by is None and verdict.opens is None:
            return None
        inc = verdict.held_by
        if verdict.opens is not None:
            with self.store.transaction() as tx:
                opened = kept.open_incident(tx, verdict.opens)
            if opened is not None:
                log.warning("brake: incident %s: %s", opened, verdict.opens.summary)
                inc = kept.incident(self.store, opened)
            else:  # opened meanwhile by another decision
                inc = _open_on(self.store, verdict.opens)
        if inc is None:
            return None
        id_ = inc.id

        def record(tx: Tx, _stored: Node) -> None:
            kept.hold(tx, id_, node.name, check, now)
            tx.add_event(
                Event(
                    at=now,
                    node=node.name,
                    kind=DRAIN_HELD,
                    reason=decision.reason,
                    actor=AUTOMATION,
                    pool=node.pool,
                    detail={"incident": id_, "action": decision.action.value, "check": check},
                )
            )

        self._remember(node, f"held:{id_}:{would_key(decision)}", record)
        return id_


def _open_on(store: Store, draft: Incident | None) -> Incident | None:
    """The incident already open where ``draft`` would have opened one (a race lost)."""
    if draft is None:
        return None
    found = kept.scope_incidents(store, [(draft.scope_kind, draft.scope)], draft.opened_at)
    return next((i for i in found if i.state == OPEN), None)
