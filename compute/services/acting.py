"""Acting on decisions, one at a time per process, on each node as it is stored now.

Two paths decide: the sweep (every node, on schedule) and attention (a posted result that
the policy says must be acted on, at once). Both act under one lock, one action at a time
(never across a whole sweep, so a fatal result never waits behind one), each on the node as
stored when the lock is held: the pool's drain budget is counted then, the gate admits the
decision then, and a node the other path has already acted on is not acted on twice.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from compute.clock import Clock
from compute.domain import AUTOMATION, AuditEntry, Event, EventKind, Node
from compute.errors import BackendError, NotLeading, RefusedError
from compute.services.remediation import Remediator
from compute.store import Store
from compute.store.tx import recording
from health.policy import (
    Action,
    Decision,
    Lifecycle,
    NodeView,
    PolicyConfig,
    apply_budget,
    decide,
)

log = logging.getLogger("computectl")

# What admits each automated decision right before it is carried out (compute/services/gate.py:
# observe mode and the shared-cause brake): the decision, or one that does nothing. It sees
# decisions that do nothing too (to forget what it held back before).
Admit = Callable[[Node, Decision], Decision]

# Decisions that take a node out of service and so count against the pool's drain budget.
BUDGETED = frozenset({Action.DRAIN, Action.CHECKUP})


def node_view(node: Node, can_burn_in: bool) -> NodeView:
    """The node as the policy sees it."""
    return NodeView(
        name=node.name,
        pool=node.pool,
        state=node.state,
        drain_owner=node.drain_owner,
        automation_drain=node.automation_drain,
        has_jobs=node.jobs_running > 0,
        can_burn_in=can_burn_in,
        voluntary=node.state is Lifecycle.BURN_IN and node.health.burn_in_voluntary,
    )


def wants_attention(node: Node, policy: PolicyConfig, now: datetime) -> bool:
    """The node's own decision (no budget) acts: the acting control plane should decide on
    it now, not at the next sweep. Periodic burn-ins are the sweep's to schedule."""
    d = decide(node_view(node, can_burn_in=False), node.health, policy, now)
    return d.acts and d.action is not Action.CHECKUP


def admit_all(_node: Node, decision: Decision) -> Decision:
    return decision


class Acting:
    def __init__(
        self,
        store: Store,
        remediator: Remediator,
        clock: Clock,
        policy: PolicyConfig,
        gate: Admit = admit_all,
    ) -> None:
        self.store = store
        self.remediator = remediator
        self.clock = clock
        self.policy = policy
        self.gate = gate
        self.lock = threading.Lock()
        # Per pool, nodes taken out through attention: a sweep whose budget was counted
        # before that counts it again (``sweep_check``).
        self.attended: Counter[str] = Counter()

    def view(self, node: Node) -> NodeView:
        return node_view(node, node.pool in self.remediator.launchers)

    def decide(self, node: Node) -> Decision:
        """The node's decision within its pool's drain budget, counted as stored now."""
        d = decide(self.view(node), node.health, self.policy, self.clock.now())
        if d.action in BUDGETED:
            views = [v for v in self.store.budget_views(node.pool) if v.name != node.name]
            d = apply_budget([d], {node.pool: [*views, self.view(node)]}, self.policy)[0]
        return d

    # -- attention -----------------------------------------------------------------------------

    def attend(self, limit: int = 100) -> int:
        """Decide and act on each node with attention set, oldest first; returns how many
        were acted on. A node that fails is logged and left to the sweep (its attention
        cleared, or it would be tried again every look); NotLeading stops all."""
        acted = 0
        for name in self.store.attention(limit):
            with self.lock:
                try:
                    acted += self._attend(name)
                except NotLeading:
                    raise  # left for the control plane that acts
                except (BackendError, RefusedError) as exc:
                    log.warning("%s: %s", name, exc)
                    self._clear_attention(name, None)
                except Exception:  # one node never stops the others; the sweep tries again
                    log.exception("%s: acting on attention failed", name)
                    self._clear_attention(name, None)
        return acted

    def _attend(self, name: str) -> int:
        node = self.store.node(name)
        if node is None or node.attention_at is None:
            return 0
        d = self.gate(node, self.decide(node))
        if not self.carry_out(node, d):
            self._clear_attention(name, node.version)
            return 0
        if d.action in BUDGETED:
            self.attended[node.pool] += 1
        return 1

    def _clear_attention(self, name: str, version: int | None) -> None:
        """Clear it, unless the node was written since it was decided on (``version``)."""

        def change(fresh: Node) -> Node | None:
            if fresh.attention_at is None or version not in (None, fresh.version):
                return None
            return fresh.evolve(attention_at=None)

        self.store.update_node(name, change)

    # -- the sweep's decisions -----------------------------------------------------------------

    def sweep_check(self, node: Node, d: Decision, attended: Counter[str]) -> tuple[Node, Decision]:
        """The sweep's decision on ``node`` (as the sweep stored it), checked under the lock:
        if the node was written since, decided again on it as stored now; if attention took
        nodes of its pool out since the sweep counted them (``attended``: the counts then),
        its budget counted again. Then through the gate."""
        if self.store.version(node.name) != node.version:
            fresh = self.store.node(node.name)
            if fresh is None:
                return node, Decision(node.name, Action.NONE)
            node, d = fresh, self.decide(fresh)
        elif d.action in BUDGETED and attended[node.pool] != self.attended[node.pool]:
            d = self.decide(node)
        return node, self.gate(node, d)

    # -- carrying out ----------------------------------------------------------------------------

    def carry_out(self, node: Node, d: Decision) -> bool:
        """Do ``d`` (automation's); True if it acted. A deferral is recorded once."""
        if d.action is Action.DEFER:
            if not node.deferred_reason:
                self.record_deferral(node, d)
            return False
        if not d.acts:
            if node.deferred_reason:
                clear = {"deferred_reason": "", "attention_at": None}
                self.store.update_node(node.name, lambda n: n.evolve(**clear))
            return False
        self.remediator.apply(node, d)
        return True

    def record_deferral(self, node: Node, d: Decision) -> None:
        now = self.clock.now()

        event = Event(
            at=now,
            node=node.name,
            kind=EventKind.DRAIN_DEFERRED,
            reason=d.reason,
            pool=node.pool,
            detail={"check": d.check, "fatal": d.fatal},
        )
        audit = AuditEntry(
            at=now,
            actor=AUTOMATION,
            action="node.drain_deferred",
            target=node.name,
            detail={"reason": d.reason},
        )
        self.store.update_node(
            node.name,
            lambda n: n.evolve(deferred_reason=d.reason, attention_at=None),
            record=recording([event], [audit]),
        )
