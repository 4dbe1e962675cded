"""The fleet's SDC reference: per (GPU model, software stack), the checksum most passing
nodes reported for the known-answer computation (health/checks/sdc.py, docs/sdc.md).

Each node counts once, with its newest passing result for that model and stack: a node that
burns in daily does not outvote a hundred that burned in once. A checksum is the reference
only where at least ``min_nodes`` nodes agree on it and no other checksum has as many (a tie
names no reference: nothing says which side is right). A failing result never counts: a
node that failed against the reference cannot move it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from compute.store import Store
from compute.store import sdc as kept
from compute.store.sdc import SdcPass

# Passing SDC results read per request at most (newest first): a fleet of 10,000 nodes
# burning in weekly posts ~43,000 a month.
MAX_RESULTS = 50_000


@dataclass(frozen=True, slots=True)
class Reference:
    model: str
    stack: str
    checksum: str | None  # None: no reference (``why`` says why)
    nodes: int  # nodes agreeing on the checksum (the top one's where there is none)
    reporting_nodes: int  # nodes with a passing result for this model and stack
    answers: int  # distinct checksums among them
    why: str

    def view(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stack": self.stack,
            "checksum": self.checksum,
            "nodes": self.nodes,
            "reporting_nodes": self.reporting_nodes,
            "answers": self.answers,
            "why": self.why,
        }


def fleet_reference(rows: Sequence[SdcPass], model: str, stack: str, min_nodes: int) -> Reference:
    """The reference from passing results, newest first (as ``kept.passes`` reads them)."""
    newest: dict[str, str] = {}
    for r in rows:
        if r.node in newest or r.values.get("model") != model or r.values.get("stack") != stack:
            continue
        checksum = r.values.get("checksum")
        if isinstance(checksum, str) and checksum:
            newest[r.node] = checksum
    counts = Counter(newest.values()).most_common()
    reporting, answers = len(newest), len(counts)

    def none(top: int, why: str) -> Reference:
        return Reference(model, stack, None, top, reporting, answers, why)

    if not counts:
        return none(0, "no passing SDC result for this model and stack yet")
    top, n = counts[0]
    if answers > 1 and counts[1][1] == n:
        return none(n, f"no majority: {answers} checksums, the top two with {n} node(s) each")
    if n < min_nodes:
        return none(n, f"{n} node(s) agree; a reference needs {min_nodes}")
    why = f"{n} of {reporting} node(s) agree" + (f" ({answers} checksums)" if answers > 1 else "")
    return Reference(model, stack, top, n, reporting, answers, why)


def reference(
    store: Store, now: datetime, model: str, stack: str, days: int, min_nodes: int
) -> Reference:
    rows = kept.passes(store, now - timedelta(days=days), MAX_RESULTS)
    return fleet_reference(rows, model, stack, min_nodes)
