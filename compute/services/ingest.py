"""Taking in check results (posted by nodes, or collected by a sweep) and folding them in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from compute.clock import Clock
from compute.domain import Node
from compute.errors import InvalidInput, NotFoundError
from compute.services.acting import wants_attention
from compute.services.learned_floors import FloorJudge
from compute.store import Store
from compute.store.hot import HotPaths
from compute.validation import MAX_RESULTS_PER_REPORT
from health.inputs import InputError, node_name, printable
from health.policy import PolicyConfig, observe
from health.result import CheckResult, ResultError


def parse_report(
    node: str, payload: Any, now: datetime | None = None, max_age: timedelta | None = None
) -> list[CheckResult]:
    """Validate a node's report: a list of results, or {"results": [...]}. All or nothing.

    With ``now``, every result must be dated within the retention before it (``max_age``)
    and at most a few minutes after it.
    """
    try:
        node_name(node)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None
    items = payload.get("results") if isinstance(payload, Mapping) else payload
    if isinstance(payload, Mapping) and set(payload) - {"results"}:
        extra = ", ".join(sorted(str(k) for k in set(payload) - {"results"}))
        raise InvalidInput(f"unknown field(s) in health report: {printable(extra[:200])}")
    if not isinstance(items, list) or not items:
        raise InvalidInput(
            "a health report is a non-empty list of results (or an object with a 'results' list)"
        )
    if len(items) > MAX_RESULTS_PER_REPORT:
        raise InvalidInput(f"a health report holds at most {MAX_RESULTS_PER_REPORT} results")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(CheckResult.from_dict(item, node=node, now=now, max_age=max_age))
        except ResultError as exc:
            raise InvalidInput(f"result {i}: {exc}") from None
    return out


class Ingest:
    """``notify(node)``: told when a node's results ask the acting control plane to decide
    on it now (its ``attention_at`` is set, in the same write as the results).

    Burn-in figures are judged against the floors learned from the fleet (``floors``,
    compute/services/learned_floors.py) before they are stored: a figure the node passed
    against its fixed floor may fail the learned one, and its burn-in with it."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        policy: PolicyConfig,
        notify: Callable[[str], None] | None = None,
        floors: FloorJudge | None = None,
    ) -> None:
        self.store = store
        self.hot = HotPaths(store)
        self.clock = clock
        self.policy = policy
        self.notify = notify
        self.floors = floors if floors is not None else FloorJudge(store, clock)

    def ingest(self, node_name: str, results: Sequence[CheckResult]) -> Node:
        """Store a node's results and fold them into it as stored now, in one transaction;
        results naming GPUs the node does not have are refused (InvalidInput), nothing
        written."""
        now = self.clock.now()
        if FloorJudge.wanted(results):
            # Burn-ins are rare: the model read apart from the write costs no report else.
            known = self.store.node(node_name)
            if known is None:
                raise NotFoundError(f"unknown node {node_name!r}")
            results = self.floors.judge(known.gpu_model, results)

        def folded(node: Node) -> Node:
            _check_gpus(node, results)
            return self._folded(node, results, now)

        stored = self.hot.fold_in(node_name, folded, results)
        if stored.attention_at is not None and self.notify is not None:
            self.notify(node_name)
        return stored

    def ingest_many(
        self, reports: Mapping[str, Sequence[CheckResult]], known: Mapping[str, Node] | None = None
    ) -> None:
        """``ingest`` for many nodes at once (burn-ins started together on the simulated
        site): one transaction, each node folded as stored now. All or nothing. ``known``:
        the nodes as the caller has just stored them; one is read again only where its
        stored version is no longer that (re-reading 3,071 whole nodes just written was a
        tenth of a first sweep's burn-ins)."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            kept = known or {}
            versions = tx.versions([n for n in reports if n in kept]) if kept else {}
            same = [kept[n] for n in reports if n in kept and versions.get(n) == kept[n].version]
            same_names = {n.name for n in same}
            nodes = same + tx.nodes([n for n in reports if n not in same_names])
            if len(nodes) != len(reports):
                unknown = sorted(set(reports) - {n.name for n in nodes})
                raise NotFoundError(f"unknown node {unknown[0]!r}")
            judged = {
                n.name: self.floors.judge(n.gpu_model, reports[n.name])
                if FloorJudge.wanted(reports[n.name])
                else reports[n.name]
                for n in nodes
            }
            for node in nodes:
                _check_gpus(node, judged[node.name])
            folded = [self._folded(n, judged[n.name], now) for n in nodes]
            tx.put_nodes(folded)  # one statement: the rows are locked as read just now
            attention = [n.name for n in folded if n.attention_at is not None]
            tx.add_results([r for results in judged.values() for r in results])
        if self.notify is not None:
            for name in attention:
                self.notify(name)

    def _folded(self, node: Node, results: Sequence[CheckResult], now: datetime) -> Node:
        folded = fold(node, results, self.policy)
        if folded.attention_at is None and wants_attention(folded, self.policy, now):
            folded = folded.evolve(attention_at=now)
        return folded


def _check_gpus(node: Node, results: Sequence[CheckResult]) -> None:
    for i, r in enumerate(results):
        beyond = [g for g in r.gpus if g >= node.gpu_count] if node.gpu_count else []
        if beyond:
            raise InvalidInput(
                f"result {i}: {node.name} has {node.gpu_count} GPUs (0-"
                f"{node.gpu_count - 1}); no GPU {beyond[0]}"
            )


def fold(node: Node, results: Sequence[CheckResult], policy: PolicyConfig, **changes: Any) -> Node:
    """The node with ``results`` folded into its health memory (plus any other ``changes``,
    in the same copy: the sweep does this for every node)."""
    if not results:
        return node.evolve(**changes) if changes else node
    latest = max(r.at for r in results)
    last = node.last_checked_at
    health = observe(node.health, results, policy)
    stored_at = changes.pop("passes_stored_at", None)
    if stored_at is not None:
        health = health.evolve(passes_stored_at=stored_at)
    return node.evolve(
        health=health,
        last_checked_at=latest if last is None or latest > last else last,
        **changes,
    )
