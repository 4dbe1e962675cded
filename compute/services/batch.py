"""Operators' drain and resume of many nodes at once: one call per backend for all of them,
and each node recorded on its own (its events and audit entry) or refused on its own."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar, runtime_checkable

from compute.backends import Backends
from compute.domain import AUTOMATION, AuditEntry, Event, Node
from compute.errors import ComputeError, InvalidInput, NotLeading, PartialError, StaleWrite
from compute.services.acting import BUDGETED, Acting
from compute.services.remediation import BurnInLauncher, Remediator
from compute.validation import node_name
from health.inputs import InputError
from health.policy import Action, Decision, DrainMode
from scheduler.errors import SchedulerError
from scheduler.protocol import BatchResult, WorkloadManager
from scheduler.slurm.hostlist import expand

log = logging.getLogger("computectl")

T = TypeVar("T")

# Nodes one call may name (hostlists make many from little text).
MAX_NODES = 4096


@dataclass(frozen=True)
class Batch:
    """What an action on many nodes did: the nodes done (as stored afterwards), and why
    each of the others was not (nothing was done to those)."""

    done: list[Node] = field(default_factory=list)
    refused: dict[str, ComputeError] = field(default_factory=dict)

    def __add__(self, other: Batch) -> Batch:
        return Batch(self.done + other.done, {**self.refused, **other.refused})

    def refusals(self) -> list[dict[str, str]]:
        """Each node not done, with the error's code and message (the API's answer)."""
        return [{"node": n, "code": e.code, "detail": str(e)} for n, e in self.refused.items()]

    def error(self, verb: str) -> ComputeError | None:
        """None if every node was done; else what to tell: with some done, a partial
        (exit 4); with none, the one refusal as it was, or all of them in one line with
        the gravest one's kind (2 refused or invalid, 3 a backend failed)."""
        if not self.refused:
            return None
        if self.done:
            total = len(self.done) + len(self.refused)
            names = ", ".join(self.refused)
            return PartialError(f"{len(self.refused)} of {total} nodes not {verb}: {names}")
        if len(self.refused) == 1:
            return next(iter(self.refused.values()))
        worst = max(self.refused.values(), key=lambda e: e.exit_code)
        why = "; ".join(str(e) for e in self.refused.values())
        return type(worst)(f"no node {verb}: {why}")


def node_names(targets: Iterable[str]) -> list[str]:
    """Node names and Slurm hostlists (``gpu-[001-016],cpu-1``) → names, each once, in order."""
    names: dict[str, None] = {}
    for target in targets:
        try:
            for name in expand(target, limit=MAX_NODES - len(names)):
                names[node_name(name)] = None
        except (InputError, ValueError) as exc:
            raise InvalidInput(f"{target!r}: {exc}") from None
    if not names:
        raise InvalidInput("name at least one node")
    return list(names)


def plan(names: Sequence[str], step: Callable[[str], T]) -> tuple[list[T], dict[str, ComputeError]]:
    """``step`` for every name; a name it refuses is kept with why, the others go on."""
    planned: list[T] = []
    refused: dict[str, ComputeError] = {}
    for name in names:
        try:
            planned.append(step(name))
        except ComputeError as exc:
            refused[name] = exc
    return planned, refused


def by_backend(
    backends: Backends, nodes: Sequence[Node]
) -> list[tuple[WorkloadManager, list[Node]]]:
    """The nodes grouped by the workload manager that serves them, in order."""
    groups: dict[int, tuple[WorkloadManager, list[Node]]] = {}
    for node in nodes:
        backend = backends.for_pool(node.pool)
        groups.setdefault(id(backend), (backend, []))[1].append(node)
    return list(groups.values())


def apply_many(
    remediator: Remediator,
    planned: Sequence[tuple[Node, Decision]],
    actor: str,
    together: bool = False,
) -> Batch:
    """Carry out each node's decision: one backend call per backend and kind of decision
    (a drain, a burn-in start, a resume), then each node recorded as ``Remediator.apply``
    records one (``together``: all of a call in one transaction, ``finish_many``); a node
    the backend failed on is reported like a refusal."""
    out = Batch()
    kinds: dict[tuple[Action, str, DrainMode], list[Node]] = {}
    for node, d in planned:
        kinds.setdefault((d.action, d.reason, d.mode), []).append(node)
    for (action, reason, mode), nodes in kinds.items():
        decision = Decision("", action, reason, mode=mode)
        for backend, group in by_backend(remediator.backends, nodes):
            out += _apply_group(remediator, backend, group, decision, actor, together)
    return out


def _apply_group(
    remediator: Remediator,
    backend: WorkloadManager,
    nodes: list[Node],
    decision: Decision,
    actor: str,
    together: bool,
) -> Batch:
    out = Batch()
    ready: list[Node] = []
    for node in nodes:
        try:
            if decision.action is not Action.DRAIN:
                remediator.require_owned_or_undrained(node)
            ready.append(node)
        except ComputeError as exc:
            out.refused[node.name] = exc
    if not ready:
        return out
    try:
        result = _call(backend, ready, decision)
    except SchedulerError as exc:
        for node in ready:
            out.refused[node.name] = _failed(remediator, node, decision, actor, exc)
        return out
    done: list[tuple[Node, Decision, Node, list[Event]]] = []
    for node in ready:
        d = _for(node, decision)
        error = result.failed.get(node.name)
        if error is not None:
            out.refused[node.name] = _failed(remediator, node, d, actor, error)
            continue
        new, events = remediator.recorded(node, d, actor, result.reports.get(node.name))
        if together:
            done.append((node, d, new, events))
            continue
        try:
            out.done.append(remediator.finish(node, d, actor, new, events))
        except ComputeError as exc:
            out.refused[node.name] = exc
    if done:
        stored, failed = finish_many(remediator, done, actor)
        out += Batch(stored, failed)
    return out


def _failed(
    remediator: Remediator, node: Node, d: Decision, actor: str, exc: SchedulerError
) -> ComputeError:
    error = remediator.failed(node, _for(node, d), actor, exc)
    error.__cause__ = exc
    return error


def _for(node: Node, decision: Decision) -> Decision:
    return replace(decision, node=node.name)


def _call(backend: WorkloadManager, nodes: list[Node], d: Decision) -> BatchResult:
    """The backend's part of ``d`` for all ``nodes``, in one call."""
    names = [n.name for n in nodes]
    match d.action:
        case Action.DRAIN:
            return backend.drain_many(
                names, d.reason, "down" if d.mode is DrainMode.DOWN else "drain"
            )
        case Action.START_BURN_IN:
            return backend.drain_many(names, d.reason, "drain")
        case Action.RESUME:
            # A node with no drain (a burn-in's reservation gone, say) has nothing to lift.
            drained = [n.name for n in nodes if n.drain_reason]
            return backend.resume_many(drained) if drained else BatchResult()
    raise ValueError(f"{d.action.value} is not done on many nodes at once")


# -- the sweep's decisions, many nodes at a time ---------------------------------------------

# What the sweep carries out in batches: one backend call and one transaction for many nodes
# (the first sweep of a site starts burn-in on every idle node; the next resumes them).
BATCHED = frozenset({Action.START_BURN_IN, Action.RESUME})
# Nodes per batch. The act lock is held for one batch, never a whole sweep: what attention
# has to act on waits for one batch at most.
BATCH_SIZE = 64


@runtime_checkable
class BatchLauncher(BurnInLauncher, Protocol):
    """One that starts many burn-ins at once (the simulated site: their results in one write)."""

    def launch_many(self, nodes: Sequence[Node]) -> None: ...


def sweep_batch(
    acting: Acting, planned: Sequence[tuple[Node, Decision]], attended: Counter[str]
) -> tuple[Batch, list[tuple[Node, Decision]]]:
    """The sweep's decisions (each node as the sweep stored it) carried out together, under
    the act lock the caller holds: the nodes still as the sweep stored them, through the
    gate one by one, then one backend call and one transaction per kind. Returns what was
    done, and the nodes to decide again alone (written since, or their pool's budget
    changed by attention since the sweep counted it)."""
    with acting.store.transaction() as tx:  # a short read, under the act lock
        fresh = {n.name: n.version for n in tx.nodes([n.name for n, _ in planned])}
    ready: list[tuple[Node, Decision]] = []
    alone: list[tuple[Node, Decision]] = []
    for node, d in planned:
        if fresh.get(node.name) != node.version or (
            d.action in BUDGETED and attended[node.pool] != acting.attended[node.pool]
        ):
            alone.append((node, d))
            continue
        admitted = acting.gate(node, d)
        if admitted.action is d.action:
            ready.append((node, d))
        else:
            acting.carry_out(node, admitted)
    acting.remediator.require_acting(AUTOMATION)
    return apply_many(acting.remediator, ready, AUTOMATION, together=True), alone


def finish_many(
    remediator: Remediator, done: Sequence[tuple[Node, Decision, Node, list[Event]]], actor: str
) -> tuple[list[Node], dict[str, ComputeError]]:
    """``Remediator.finish`` for nodes the backend acted on together (each as read, its
    decision, and ``recorded``'s node and events): recorded in one transaction, each written
    on the condition that nobody wrote it since it was read, then their burn-ins started
    together. If one was written meanwhile, or the transaction fails, each is recorded on
    its own (on its row as stored then). Returns the nodes as stored, and those not."""
    stored: list[Node] = []
    failed: dict[str, ComputeError] = {}
    try:
        with remediator.store.transaction() as tx:
            changed = [(b, remediator.settled(b, d, actor, new)(b)) for b, d, new, _ in done]
            # Batched by the columns changed; StaleWrite if any was written since.
            stored = tx.put_changes(changed)
            events: list[Event] = []
            audits: list[AuditEntry] = []
            for before, d, new, evs in done:
                audit = remediator.audit(before, d, actor, new, evs)
                events += evs
                audits += [] if audit is None else [audit]
            tx.add_events(events)
            tx.add_audits(audits)
    except Exception as exc:  # any store failure: each on its own, as finish does
        if not isinstance(exc, StaleWrite):
            log.warning("recording %d nodes together failed (%s); one by one", len(done), exc)
        stored = []
        for before, d, new, events in done:
            try:
                stored.append(remediator.finish(before, d, actor, new, events))
            except ComputeError as error:
                failed[before.name] = error
        return stored, failed
    _launch_many(remediator, stored, {before.name: d for before, d, *_ in done}, actor)
    return stored, failed


def _launch_many(
    remediator: Remediator, nodes: list[Node], decisions: dict[str, Decision], actor: str
) -> None:
    by_pool: dict[str, list[Node]] = {}
    for node in nodes:
        if decisions[node.name].action in (Action.START_BURN_IN, Action.CHECKUP):
            by_pool.setdefault(node.pool, []).append(node)
    for pool, group in by_pool.items():
        launcher = remediator.launchers.get(pool)
        if launcher is None:
            continue
        try:
            remediator.require_acting(actor)
            if isinstance(launcher, BatchLauncher):
                launcher.launch_many(group)
            else:
                for node in group:
                    launcher.launch(node)
        except SchedulerError as exc:
            # The nodes stay in burn-in; without results they time out and are retried.
            for node in group:
                remediator.failed(node, decisions[node.name], actor, exc)
        except NotLeading:
            log.info("%s: burn-ins left to the control plane that acts", pool)
