"""Taking in check results (posted by nodes, or collected by a sweep) and folding them in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from compute.clock import Clock
from compute.domain import Node
from compute.errors import InvalidInput, NotFoundError
from compute.store import Store
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
    def __init__(self, store: Store, clock: Clock, policy: PolicyConfig) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy

    def ingest(self, node_name: str, results: Sequence[CheckResult]) -> Node:
        node = self.store.node(node_name)
        if node is None:
            raise NotFoundError(f"unknown node {node_name!r}")
        for i, r in enumerate(results):
            beyond = [g for g in r.gpus if g >= node.gpu_count] if node.gpu_count else []
            if beyond:
                raise InvalidInput(
                    f"result {i}: {node_name} has {node.gpu_count} GPUs (0-"
                    f"{node.gpu_count - 1}); no GPU {beyond[0]}"
                )
        folded = fold(node, results, self.policy)
        with self.store.transaction() as tx:
            tx.add_results(results)
            tx.put_node(folded)
        return folded


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
