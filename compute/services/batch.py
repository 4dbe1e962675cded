"""Operators' drain and resume of many nodes at once: one call per backend for all of them,
and each node recorded on its own (its events and audit entry) or refused on its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from compute.backends import Backends
from compute.domain import Node
from compute.errors import ComputeError, InvalidInput, PartialError
from compute.services.remediation import Remediator
from compute.validation import node_name
from health.inputs import InputError
from health.policy import Action, Decision, DrainMode
from scheduler.errors import SchedulerError
from scheduler.protocol import BatchResult, WorkloadManager
from scheduler.slurm.hostlist import expand

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
    remediator: Remediator, planned: Sequence[tuple[Node, Decision]], actor: str
) -> Batch:
    """Carry out each node's decision: one backend call per backend and kind of decision
    (a drain, a burn-in start, a resume), then each node recorded as ``Remediator.apply``
    records one; a node the backend failed on is reported like a refusal."""
    out = Batch()
    kinds: dict[tuple[Action, str, DrainMode], list[Node]] = {}
    for node, d in planned:
        kinds.setdefault((d.action, d.reason, d.mode), []).append(node)
    for (action, reason, mode), nodes in kinds.items():
        decision = Decision("", action, reason, mode=mode)
        for backend, group in by_backend(remediator.backends, nodes):
            out += _apply_group(remediator, backend, group, decision, actor)
    return out


def _apply_group(
    remediator: Remediator,
    backend: WorkloadManager,
    nodes: list[Node],
    decision: Decision,
    actor: str,
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
    for node in ready:
        d = _for(node, decision)
        error = result.failed.get(node.name)
        if error is not None:
            out.refused[node.name] = _failed(remediator, node, d, actor, error)
            continue
        report = result.reports.get(node.name)
        new, events = remediator.recorded(node, d, actor, report.blocked if report else ())
        try:
            out.done.append(remediator.finish(node, d, actor, new, events))
        except ComputeError as exc:
            out.refused[node.name] = exc
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
