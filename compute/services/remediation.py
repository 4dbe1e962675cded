"""Carrying out decisions: the backend first, then state, event and audit in one transaction.

If the backend call fails, nothing is recorded as done: the node keeps its
state and an `action_failed` event says what went wrong; the next sweep
decides again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from compute.backends import Backends
from compute.clock import Clock
from compute.domain import AUTOMATION, AuditEntry, Event, EventKind, Node
from compute.errors import BackendError, NotLeading, RefusedError, StoreFailure
from compute.services.drain_work import drain_detail
from compute.services.safe_text import safe_audit, safe_event, safe_node
from compute.store import Store
from compute.store.tx import recording
from health.policy import (
    Action,
    Decision,
    DrainOwner,
    Lifecycle,
    PolicyConfig,
    is_owned,
    transition,
)
from scheduler.errors import SchedulerError
from scheduler.protocol import DrainReport

log = logging.getLogger("computectl")

# Actions that drain the node in the backend: undone by resuming a node that was not drained.
_DRAINING_ACTIONS = frozenset({Action.DRAIN, Action.START_BURN_IN, Action.CHECKUP, Action.REPAIR})


class BurnInLauncher(Protocol):
    """Starts the burn-in suite on a drained node; results arrive through ingest."""

    def launch(self, node: Node) -> None: ...


class Remediator:
    def __init__(
        self,
        store: Store,
        backends: Backends,
        clock: Clock,
        policy: PolicyConfig,
        launchers: Mapping[str, BurnInLauncher],
        may_act: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.backends = backends
        self.clock = clock
        self.policy = policy
        # Per pool. A pool without one waits for burn-in results posted from the node
        # (`computectl node check --suite burnin --report URL`), up to the burn-in timeout.
        self.launchers = dict(launchers)
        # Automation acts only while this says so (leadership: one control plane acts),
        # asked right before each backend call; operators' actions are never held back.
        self.may_act = may_act

    def apply(
        self,
        node: Node,
        decision: Decision,
        actor: str = AUTOMATION,
        note: dict[str, Any] | None = None,
    ) -> Node:
        """Do ``decision`` on ``node``; returns the node as stored afterwards."""
        handler: Callable[[Node, Decision, str], tuple[Node, list[Event]]] = {
            Action.DRAIN: self._drain,
            Action.MARK_DRAINED: self._mark_drained,
            Action.START_BURN_IN: self._start_burn_in,
            Action.CHECKUP: self._start_burn_in,
            Action.RESUME: self._resume,
            Action.REPAIR: self._repair,
            Action.CONTINUE_DRAIN: self._continue_drain,
            Action.BURN_IN_STALLED: self._stalled,
        }[decision.action]
        self.require_acting(actor)
        try:
            new, events = handler(node, decision, actor)
        except SchedulerError as exc:
            raise self.failed(node, decision, actor, exc) from exc
        return self.finish(node, decision, actor, new, events, note)

    def failed(
        self, node: Node, decision: Decision, actor: str, exc: SchedulerError
    ) -> BackendError:
        """Records that the backend refused ``decision``: the error to raise or report."""
        self._record_failure(node, decision, actor, exc)
        return BackendError(
            f"{node.name}: {decision.action.value} failed in the "
            f"{self.backends.for_pool(node.pool).kind} backend: {exc}"
        )

    def finish(
        self,
        node: Node,
        decision: Decision,
        actor: str,
        new: Node,
        events: list[Event],
        note: dict[str, Any] | None = None,
    ) -> Node:
        """Records what the backend did (``new``, ``events``, an audit entry), then starts
        the burn-in it began; returns the node as stored afterwards."""
        audit = self.audit(node, decision, actor, new, events, note)
        new = self._keep(node, decision, actor, new, events, audit)
        launcher = self.launchers.get(node.pool)
        if decision.action in (Action.START_BURN_IN, Action.CHECKUP) and launcher is not None:
            try:
                self.require_acting(actor)
                launcher.launch(new)
            except SchedulerError as exc:
                # The node stays in burn-in; without results it times out and is retried.
                self._record_failure(new, decision, actor, exc)
            except NotLeading:
                log.info("%s: burn-in left to the control plane that acts", node.name)
            refreshed = self.store.node(node.name)
            return refreshed if refreshed is not None else new
        return new

    def audit(
        self,
        node: Node,
        decision: Decision,
        actor: str,
        new: Node,
        events: list[Event],
        note: dict[str, Any] | None = None,
    ) -> AuditEntry | None:
        # A retried drain that moved nothing is not news: no audit row every sweep.
        if decision.action is Action.CONTINUE_DRAIN and not events:
            return None
        return AuditEntry(
            at=self.clock.now(),
            actor=actor,
            action=f"node.{decision.action.value}",
            target=node.name,
            detail={
                "reason": decision.reason,
                "from": node.state.value,
                "to": new.state.value,
                "mode": decision.mode.value,
                **(note or {}),
            },
        )

    def require_acting(self, actor: str) -> None:
        if actor == AUTOMATION and self.may_act is not None and not self.may_act():
            raise NotLeading("this control plane does not act now; nothing was done")

    def _keep(
        self,
        before: Node,
        decision: Decision,
        actor: str,
        new: Node,
        events: list[Event],
        audit: AuditEntry | None,
    ) -> Node:
        """Record what the backend did, on the node as stored now (``new`` if nobody wrote it
        since ``before`` was read, else the same transition done on what is stored); returns
        it as stored. The backend did it: so it is recorded, with text made safe if the store
        refuses the original, or else undone, so the store never lags the cluster."""
        change = self.settled(before, decision, actor, new)
        try:
            return self._write(before.name, change, events, audit)
        except Exception as exc:  # any store failure: the backend has acted already
            log.warning("%s: recording %s failed: %s", new.name, decision.action.value, exc)
            first = exc
        try:
            return self._write(
                before.name,
                lambda fresh: safe_node(change(fresh)),
                [safe_event(e) for e in events],
                None if audit is None else safe_audit(audit),
            )
        except Exception:
            log.exception("%s: recording %s failed twice", new.name, decision.action.value)
        undone = self._undo(before, decision)
        raise StoreFailure(
            f"{before.name}: {decision.action.value} was done in the backend but could not be "
            f"recorded ({type(first).__name__}); "
            + ("it was undone" if undone else "undoing it failed: the next sweep adopts it")
        )

    def settled(self, before: Node, d: Decision, actor: str, new: Node) -> Callable[[Node], Node]:
        """What to store of a node the backend acted on, given it as stored now: ``new`` if
        nobody wrote it since ``before`` was read, else the same transition done on it."""
        blocked = new.health.drain_blocked

        def change(fresh: Node) -> Node:
            if fresh.version == before.version:
                done = new.evolve(version=fresh.version)
            else:
                done = self._transition(fresh, d, actor, blocked)
            # Automation has decided on the node: what asked it to is answered.
            return done.evolve(attention_at=None) if actor == AUTOMATION else done

        return change

    def _write(
        self,
        name: str,
        change: Callable[[Node], Node],
        events: list[Event],
        audit: AuditEntry | None,
    ) -> Node:
        record = recording(events, [] if audit is None else [audit])
        return self.store.update_node(name, change, record=record)

    def _undo(self, before: Node, decision: Decision) -> bool:
        backend = self.backends.for_pool(before.pool)
        try:
            if decision.action is Action.RESUME:
                backend.drain(before.name, before.drain_reason, "drain")
            elif decision.action in _DRAINING_ACTIONS and not before.drain_reason:
                backend.resume(before.name)
        except SchedulerError:
            log.exception("%s: undoing %s failed", before.name, decision.action.value)
            return False
        return True

    # -- the actions -------------------------------------------------------------------------

    def _event(self, node: Node, kind: str, reason: str, actor: str, **detail: Any) -> Event:
        return Event(
            at=self.clock.now(),
            node=node.name,
            kind=kind,
            reason=reason,
            actor=actor,
            pool=node.pool,
            detail=detail,
        )

    def _transition(
        self, node: Node, d: Decision, actor: str, blocked: tuple[str, ...] = ()
    ) -> Node:
        return transition(
            node,
            d,
            self.clock.now(),
            self.policy,
            actor=actor,
            automated=actor == AUTOMATION,
            blocked=blocked,
        )

    def _drain(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        report = self.backends.for_pool(node.pool).drain(node.name, d.reason, d.mode.value)
        return self.recorded(node, d, actor, report)

    def recorded(
        self, node: Node, d: Decision, actor: str, report: DrainReport | None = None
    ) -> tuple[Node, list[Event]]:
        """The node and events once the backend has done ``d`` (a drain, burn-in start,
        resume or repair); ``report``: the work a drain left running, and what it ended."""
        match d.action:
            case Action.DRAIN:
                return self._drained(node, d, actor, report or DrainReport())
            case Action.START_BURN_IN | Action.CHECKUP:
                return self._burn_in_started(node, d, actor)
            case Action.RESUME:
                return self._resumed(node, d, actor)
            case Action.REPAIR:
                return self._repaired(node, d, actor)
        raise ValueError(f"{d.action.value} is not done on many nodes at once")

    def _drained(
        self, node: Node, d: Decision, actor: str, report: DrainReport
    ) -> tuple[Node, list[Event]]:
        new = self._transition(node, d, actor, report.blocked)
        state = new.state
        events = [
            self._event(
                node,
                EventKind.DRAIN,
                d.reason,
                actor,
                check=d.check,
                fatal=d.fatal,
                mode=d.mode.value,
                **drain_detail(report),
                **_detected(node, actor),
                cause="operator" if actor != AUTOMATION else "fatal" if d.fatal else "consecutive",
            )
        ]
        if state is Lifecycle.DRAINED:
            events.append(self._event(node, EventKind.DRAINED, d.reason, actor))
        return new, events

    def _continue_drain(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        self.require_owned_or_undrained(node)
        wm = self.backends.for_pool(node.pool)
        report = wm.drain(node.name, node.drain_reason, "drain") or DrainReport()
        # What it ended is news too: the look at the fault drain finds it in this event.
        if report.blocked == node.health.drain_blocked and not report.evicted:
            return node, []
        new = self._transition(node, d, actor, report.blocked)
        moved = sorted(set(node.health.drain_blocked) - set(report.blocked))
        detail = {"moved": moved, **drain_detail(report)}
        return new, [self._event(node, EventKind.DRAIN, node.drain_reason, actor, **detail)]

    def _stalled(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        new = self._transition(node, d, actor)
        return new, [self._event(node, EventKind.BURN_IN_STALLED, d.reason, actor)]

    def _mark_drained(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        new = self._transition(node, d, actor)
        return new, [self._event(node, EventKind.DRAINED, node.drain_reason, actor)]

    def _start_burn_in(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        self.require_owned_or_undrained(node)
        self.backends.for_pool(node.pool).drain(node.name, d.reason, "drain")
        return self._burn_in_started(node, d, actor)

    def _burn_in_started(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        events = self._burn_in_failed(node, actor)
        attempt = node.health.burn_in_failures + 1
        new = self._transition(node, d, actor)
        # A burn-in that takes a serving node out is a drain, for a cause of its own; one
        # on a node already out (after a fault) is not.
        taken_out = not node.drain_reason and actor == AUTOMATION
        cause = {Action.CHECKUP: "periodic", Action.START_BURN_IN: "burn_in"}.get(d.action)
        extra = {"cause": cause} if taken_out and cause else {}
        events.append(
            self._event(node, EventKind.BURN_IN_STARTED, d.reason, actor, attempt=attempt, **extra)
        )
        return new, events

    def _resume(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        self.require_owned_or_undrained(node)
        if node.drain_reason:
            self.backends.for_pool(node.pool).resume(node.name)
        return self._resumed(node, d, actor)

    def _resumed(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        events = []
        if node.state is Lifecycle.BURN_IN and node.health.burn_in_outcome is not None:
            events.append(self._event(node, EventKind.BURN_IN_PASSED, "", actor))
        new = self._transition(node, d, actor)
        events.append(self._event(node, EventKind.RESUME, d.reason, actor))
        return new, events

    def _repair(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        self.require_owned_or_undrained(node)
        self.backends.for_pool(node.pool).drain(node.name, d.reason, "drain")
        return self._repaired(node, d, actor)

    def _repaired(self, node: Node, d: Decision, actor: str) -> tuple[Node, list[Event]]:
        events = self._burn_in_failed(node, actor)
        new = self._transition(node, d, actor)
        events.append(self._event(node, EventKind.REPAIR, d.reason, actor))
        return new, events

    def _burn_in_failed(self, node: Node, actor: str) -> list[Event]:
        """The event for a failed burn-in the next step leaves behind (none if none)."""
        outcome = node.health.burn_in_outcome
        if node.state is Lifecycle.BURN_IN and outcome is not None and not outcome.passed:
            fatal = {"fatal": True, "checks": list(outcome.fatal_checks)} if outcome.fatal else {}
            return [self._event(node, EventKind.BURN_IN_FAILED, outcome.evidence, actor, **fatal)]
        return []

    def require_owned_or_undrained(self, node: Node) -> None:
        # The last line of defence: whatever decided, a drain someone else made stays.
        if node.drain_owner is DrainOwner.EXTERNAL or (
            node.drain_reason and not is_owned(node.drain_reason)
        ):
            raise RefusedError(
                f"{node.name} is drained by someone else "
                f"(reason: {node.drain_reason!r}); computectl leaves it alone"
            )

    def _record_failure(self, node: Node, d: Decision, actor: str, exc: Exception) -> None:
        with self.store.transaction() as tx:
            tx.add_event(
                self._event(
                    node,
                    EventKind.ACTION_FAILED,
                    f"{d.action.value}: {exc}",
                    actor,
                    action=d.action.value,
                )
            )


def _detected(node: Node, actor: str) -> dict[str, str]:
    """When the finding an automated drain answers was first known to the control plane:
    metrics build detection-to-drain latency from drain events."""
    finding = node.health.finding
    at = node.attention_at or (finding.at if finding is not None else None)
    return {"detected_at": at.isoformat()} if at is not None and actor == AUTOMATION else {}
