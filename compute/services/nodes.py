"""Operators' node actions: drain, resume, retire; and what `nodes show` tells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compute.backends import Backends
from compute.clock import Clock
from compute.domain import AuditEntry, Event, EventKind, Gpu, Node
from compute.errors import BackendError, InvalidInput, NotFoundError, RefusedError
from compute.services import fleet
from compute.services.batch import Batch, apply_many, by_backend, node_names, plan
from compute.services.remediation import Remediator
from compute.store import Store
from compute.store.hot import HotPaths
from compute.store.repository import Tx
from compute.store.tx import recording
from compute.validation import reason as valid_reason
from health.inputs import InputError
from health.policy import (
    Action,
    Decision,
    DrainMode,
    DrainOwner,
    Lifecycle,
    back_in_service,
    owned_reason,
)
from health.result import CheckResult
from scheduler.errors import SchedulerError
from scheduler.protocol import BatchResult


@dataclass(frozen=True)
class NodeDetail:
    node: Node
    gpus: list[Gpu]
    results: list[CheckResult]
    events: list[Event]


def _reason(text: str) -> str:
    try:
        return valid_reason(text)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None


class NodeService:
    def __init__(
        self, store: Store, backends: Backends, clock: Clock, remediator: Remediator
    ) -> None:
        self.store = store
        self.hot = HotPaths(store)
        self.backends = backends
        self.clock = clock
        self.remediator = remediator

    def get(self, name: str) -> Node:
        node = self.hot.node(name)
        if node is None:
            raise NotFoundError(f"unknown node {name!r}")
        return node

    def list(self, pool: str | None = None, state: str | None = None) -> list[Node]:
        return fleet.nodes(self.store, pool, state)

    def detail(self, name: str, events: int = 20) -> NodeDetail:
        """The node, its GPUs, the newest result of each check and its latest events, as
        one snapshot."""
        read = self.hot.detail(name, events)
        return NodeDetail(node=read.node, gpus=read.gpus, results=read.results, events=read.events)

    def drain(self, name: str, reason: str, actor: str, now_mode: bool = False) -> Node:
        node, decision = self._drain_plan(name, _reason(reason), now_mode)
        return self.remediator.apply(node, decision, actor=actor)

    def drain_many(
        self, targets: Sequence[str], reason: str, actor: str, now_mode: bool = False
    ) -> Batch:
        """``drain`` for every node named (names or Slurm hostlists), with one call per
        backend; a node refused is reported and stops none of the others."""
        reason = _reason(reason)
        planned, refused = plan(
            node_names(targets), lambda name: self._drain_plan(name, reason, now_mode)
        )
        return Batch(refused=refused) + apply_many(self.remediator, planned, actor)

    def _drain_plan(self, name: str, reason: str, now_mode: bool) -> tuple[Node, Decision]:
        node = self.get(name)
        if node.drain_owner is DrainOwner.EXTERNAL:
            raise RefusedError(
                f"{name} is already drained by someone else "
                f"(reason: {node.drain_reason!r}); computectl leaves it alone"
            )
        # Draining again retries what the last drain could not move (work a disruption
        # budget protected), or with --now ends what still runs.
        if node.state not in (Lifecycle.IN_SERVICE, Lifecycle.DRAINING):
            raise RefusedError(f"{name} is {node.state.value}, not in service; nothing to drain")
        decision = Decision(
            name,
            Action.DRAIN,
            owned_reason("operator", reason),
            mode=DrainMode.DOWN if now_mode else DrainMode.DRAIN,
        )
        return node, decision

    def left_running(self, name: str) -> tuple[str, ...]:
        """Work the node's latest drain could not move (a disruption budget protects it)."""
        last = self.store.events(node=name, kinds=[EventKind.DRAIN], limit=1)
        left = last[0].detail.get("left_running", []) if last else []
        return tuple(str(x) for x in left)

    def resume(
        self, name: str, actor: str, force: bool = False, skip_burn_in: bool = False
    ) -> Node:
        """Return a node to service: through burn-in unless told to skip it.

        A drain someone else made is refused unless ``force``: then it is lifted
        and the audit log says who forced it.
        """
        node, decision = self._resume_plan(name, actor, force, skip_burn_in)
        if decision is None:
            return self._force_resume(node, actor)
        return self.remediator.apply(node, decision, actor=actor)

    def resume_many(
        self, targets: Sequence[str], actor: str, force: bool = False, skip_burn_in: bool = False
    ) -> Batch:
        """``resume`` for every node named, like ``drain_many``."""
        planned, refused = plan(
            node_names(targets),
            lambda name: self._resume_plan(name, actor, force, skip_burn_in),
        )
        forced = [node for node, d in planned if d is None]
        out = Batch(refused=refused) + apply_many(
            self.remediator, [(node, d) for node, d in planned if d is not None], actor
        )
        for backend, nodes in by_backend(self.backends, forced):
            try:
                result = backend.resume_many([n.name for n in nodes])
            except SchedulerError as exc:
                result = BatchResult(failed=dict.fromkeys((n.name for n in nodes), exc))
            for node in nodes:
                error = result.failed.get(node.name)
                if error is None:
                    out.done.append(self._record_forced(node, actor))
                else:
                    out.refused[node.name] = BackendError(f"{node.name}: resume failed: {error}")
        return out

    def _resume_plan(
        self, name: str, actor: str, force: bool, skip_burn_in: bool
    ) -> tuple[Node, Decision | None]:
        """What resuming ``name`` takes: a decision, or None for lifting someone else's drain."""
        node = self.get(name)
        if node.state is Lifecycle.RETIRED:
            raise RefusedError(f"{name} is retired")
        if node.state is Lifecycle.IN_SERVICE:
            raise RefusedError(f"{name} is in service, not drained")
        if node.drain_owner is DrainOwner.EXTERNAL:
            if not force:
                raise RefusedError(
                    f"{name} was drained by someone else (reason: {node.drain_reason!r}); "
                    "computectl does not lift drains it did not make (use --force to override)"
                )
            return node, None
        if skip_burn_in:
            return node, Decision(name, Action.RESUME, "operator resume without burn-in")
        if node.state is Lifecycle.DRAINING and node.jobs_running:
            # Jobs are still finishing: burn-in must wait for an empty node.
            raise RefusedError(
                f"{name} still runs {node.jobs_running} job(s); resume it with "
                "--skip-burn-in, or wait until it is drained"
            )
        return node, Decision(
            name, Action.START_BURN_IN, owned_reason("burn-in", f"resumed by {actor}")
        )

    def _force_resume(self, node: Node, actor: str) -> Node:
        try:
            self.backends.for_pool(node.pool).resume(node.name)
        except SchedulerError as exc:
            raise BackendError(f"{node.name}: resume failed: {exc}") from exc
        return self._record_forced(node, actor)

    def _record_forced(self, node: Node, actor: str) -> Node:
        now = self.clock.now()

        event = Event(
            at=now,
            node=node.name,
            kind=EventKind.RESUME,
            reason=f"forced over drain: {node.drain_reason}",
            actor=actor,
            pool=node.pool,
        )
        audit = AuditEntry(
            at=now,
            actor=actor,
            action="node.resume_forced",
            target=node.name,
            detail={"overrode_reason": node.drain_reason, "from": node.state.value},
        )

        # The backend's drain is lifted: whatever was written since, the node is back.
        return self.store.update_node(
            node.name, lambda fresh: back_in_service(fresh, now), record=recording([event], [audit])
        )

    def retire(self, name: str, actor: str) -> Node:
        now = self.clock.now()
        was: dict[str, Lifecycle] = {}  # the state it is retired from, as stored then

        def retired(node: Node) -> Node:
            if node.state not in (Lifecycle.REPAIR, Lifecycle.DRAINED):
                raise RefusedError(
                    f"{name} is {node.state.value}; only drained nodes or nodes in "
                    "repair can be retired"
                )
            was["state"] = node.state
            return node.evolve(state=Lifecycle.RETIRED, state_since=now, automation_drain=False)

        def record(tx: Tx, stored: Node) -> None:
            tx.add_event(
                Event(at=now, node=name, kind=EventKind.RETIRE, actor=actor, pool=stored.pool)
            )
            tx.add_audit(
                AuditEntry(
                    at=now,
                    actor=actor,
                    action="node.retire",
                    target=name,
                    detail={"from": was["state"].value},
                )
            )

        return self.store.update_node(name, retired, record=record)
