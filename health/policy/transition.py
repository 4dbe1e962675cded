"""How a node's lifecycle changes when a decision has been carried out: the one rule.

Remediation calls the backend, then applies ``transition`` and saves; the sync with a
workload manager and an operator's forced resume use the same pieces
(``back_in_service``, ``drained_by``). The node is anything with the lifecycle fields
(compute's ``Node``): the rule is pure and returns the same type it was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from health.policy.decide import after
from health.policy.model import (
    Action,
    Decision,
    DrainMode,
    DrainOwner,
    Lifecycle,
    NodeHealth,
    PolicyConfig,
)


class LifecycleNode(Protocol):
    """The lifecycle part of a node: what a transition reads and writes."""

    @property
    def state(self) -> Lifecycle: ...
    @property
    def state_since(self) -> datetime: ...
    @property
    def drain_reason(self) -> str: ...
    @property
    def drain_owner(self) -> DrainOwner | None: ...
    @property
    def drain_actor(self) -> str: ...
    @property
    def automation_drain(self) -> bool: ...
    @property
    def deferred_reason(self) -> str: ...
    @property
    def jobs_running(self) -> int: ...
    @property
    def health(self) -> NodeHealth: ...

    def evolve(self, **changes: Any) -> Self: ...


N = TypeVar("N", bound=LifecycleNode)


def transition(
    node: N,
    decision: Decision,
    now: datetime,
    cfg: PolicyConfig,
    *,
    actor: str,
    automated: bool,
    blocked: Sequence[str] = (),
) -> N:
    """``node`` once ``decision`` has been done by ``actor`` (``automated``: the policy's own
    actor). ``blocked``: work the backend's drain left running (a disruption budget)."""
    d = decision
    health = after(d, node.health, cfg, now)
    match d.action:
        case Action.DRAIN:
            # Work a disruption budget protects stays: the node drains until it is gone.
            busy = (node.jobs_running > 0 and d.mode is DrainMode.DRAIN) or bool(blocked)
            return drained_by(
                node,
                Lifecycle.DRAINING if busy else Lifecycle.DRAINED,
                d.reason,
                actor,
                now,
                automation_drain=automated,
                jobs_running=0 if d.mode is DrainMode.DOWN else node.jobs_running,
                health=health.evolve(drain_blocked=tuple(blocked)),
            )
        case Action.CONTINUE_DRAIN:
            return node.evolve(health=node.health.evolve(drain_blocked=tuple(blocked)))
        case Action.MARK_DRAINED:
            return node.evolve(state=Lifecycle.DRAINED, state_since=now)
        case Action.START_BURN_IN | Action.CHECKUP:
            return drained_by(
                node,
                Lifecycle.BURN_IN,
                d.reason,
                actor,
                now,
                # A periodic burn-in takes a node out of service: it counts against the budget.
                automation_drain=node.automation_drain or d.action is Action.CHECKUP,
                health=health,
            )
        case Action.REPAIR:
            return drained_by(
                node, Lifecycle.REPAIR, d.reason, actor, now, automation_drain=False, health=health
            )
        case Action.RESUME:
            return back_in_service(node, now).evolve(health=health)
        case Action.BURN_IN_STALLED:
            return node.evolve(health=health)
        case Action.DEFER:
            return node.evolve(deferred_reason=d.reason)
    return node


def drained_by(
    node: N, state: Lifecycle, reason: str, actor: str, now: datetime, **changes: Any
) -> N:
    """Out of service under a drain of computectl's, made by ``actor``."""
    return node.evolve(
        state=state,
        state_since=now,
        drain_reason=reason,
        drain_owner=DrainOwner.COMPUTECTL,
        drain_actor=actor,
        deferred_reason="",
        **changes,
    )


def back_in_service(node: N, now: datetime) -> N:
    """In service, no drain of anyone's (the node's health memory is the caller's)."""
    return node.evolve(
        state=Lifecycle.IN_SERVICE,
        state_since=now,
        drain_reason="",
        drain_owner=None,
        drain_actor="",
        automation_drain=False,
        deferred_reason="",
    )
