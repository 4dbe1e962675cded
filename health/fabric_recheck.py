"""Re-pairing: a suspect is tested again with a known-good partner before it is called slow.

The ring gives each node two partners, so a healthy node between two bad ones is slow
with both, and a node whose other pair failed cannot be told from its link. Before the
verdict stands, each such node (a suspect node, or an inconclusive one) runs once more
with a *known-good* partner: a node every pair of which was measured and none slow.

- slow again with the known-good partner: the node is **confirmed** (a suspect node);
- fast with it: the node is **cleared**: what was slow was the link or the partner. Its
  slow pairs whose other node is no confirmed suspect become suspect links;
- no figure: nothing was measured, which is no evidence either way: the ring's verdict
  stands, and says it was not confirmed;
- no known-good partner in the run: the ring's verdict stands, and says why.

The re-pairs are judged against the ring's own bar (its reference and floor): a handful of
re-pairs is no sample to take a reference from. Pure functions, like health.fabric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from health.fabric import FabricReport, PairFigure


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    CLEARED = "cleared"
    NO_FIGURE = "no_figure"
    NO_PARTNER = "no_partner"


@dataclass(frozen=True, slots=True)
class Recheck:
    node: str  # the suspect re-paired
    partner: str  # its known-good partner ("" when there was none)
    busbw_gbps: float | None
    ratio: float | None  # to the ring's reference, where there is one
    outcome: Outcome
    error: str = ""
    job: str = ""


def candidates(report: FabricReport) -> list[str]:
    """The nodes to re-pair: suspect nodes, then inconclusive ones, each once."""
    return list(dict.fromkeys([*report.suspect_nodes, *report.inconclusive]))


def known_good(report: FabricReport) -> list[str]:
    """Nodes that passed everywhere: at least one pair, every pair measured, none slow."""
    by_node: dict[str, list[bool]] = {}
    for v in report.pairs:
        for n in v.nodes:
            by_node.setdefault(n, []).append(not v.failed and not v.slow)
    bad = set(candidates(report))
    return [n for n, fine in by_node.items() if all(fine) and n not in bad]


def plan(report: FabricReport) -> list[list[tuple[str, str]]]:
    """Rounds of disjoint (suspect, known-good partner) pairs, as many suspects per round as
    there are known-good nodes; empty when nothing is to be re-paired or the ring was not
    judged (no reference, no floor: nothing could be slow)."""
    todo = candidates(report)
    good = known_good(report)
    if not todo or not good or not report.judged:
        return []
    rounds = []
    for start in range(0, len(todo), len(good)):
        chunk = todo[start : start + len(good)]
        rounds.append([(node, good[i]) for i, node in enumerate(chunk)])
    return rounds


def _bar(report: FabricReport) -> float:
    ref = report.reference_gbps
    return max(report.slow_ratio * ref if ref is not None else 0.0, report.floor_gbps or 0.0)


def rejudge(
    report: FabricReport, figures: Sequence[PairFigure]
) -> tuple[FabricReport, tuple[Recheck, ...]]:
    """The ring's report with the re-pairs' verdicts applied, and each re-pair's outcome.

    ``figures``: one per planned re-pair, its nodes (suspect, partner) in that order.
    """
    bar = _bar(report)
    base = report.reference_gbps or report.floor_gbps
    done: dict[str, Recheck] = {}
    for f in figures:
        node, partner = f.nodes
        if f.busbw_gbps is None:
            outcome = Outcome.NO_FIGURE
        elif f.busbw_gbps < bar:
            outcome = Outcome.CONFIRMED
        else:
            outcome = Outcome.CLEARED
        ratio = f.busbw_gbps / base if f.busbw_gbps is not None and base else None
        done[node] = Recheck(node, partner, f.busbw_gbps, ratio, outcome, f.error, f.job)
    checks = tuple(
        done.get(n) or Recheck(n, "", None, None, Outcome.NO_PARTNER) for n in candidates(report)
    )
    return _apply(report, {c.node: c for c in checks}), checks


def _apply(report: FabricReport, checks: Mapping[str, Recheck]) -> FabricReport:
    suspects: dict[str, str] = {}
    inconclusive: list[str] = []
    for node in candidates(report):
        c = checks[node]
        ring = report.suspect_nodes.get(node, "")
        if c.outcome is Outcome.CONFIRMED:
            # What was confirmed first: a drain reason keeps only its first 160 characters.
            again = f"and again with known-good {c.partner} ({_figure(c)})"
            head, _, partners = ring.partition(": ")
            suspects[node] = (
                f"{head} {again}: {partners}" if ring else f"slow with its partner {again}"
            )
        elif c.outcome is Outcome.CLEARED:
            continue
        elif ring:
            suspects[node] = f"{ring}; {_unconfirmed(c)}"
        else:
            inconclusive.append(node)
    cleared = {n for n, c in checks.items() if c.outcome is Outcome.CLEARED}
    links = list(report.suspect_links)
    for v in report.pairs:
        # A cleared node's slow pair is its link's fault, unless its partner is a suspect
        # or still unexplained.
        if (
            v.slow
            and v.nodes not in links
            and any(n in cleared for n in v.nodes)
            and all(n in cleared or n not in checks for n in v.nodes)
        ):
            links.append(v.nodes)
    return dataclasses.replace(
        report,
        suspect_nodes=suspects,
        suspect_links=tuple(links),
        inconclusive=tuple(inconclusive),
    )


def _figure(c: Recheck) -> str:
    pct = f", {c.ratio:.0%} of the reference" if c.ratio is not None else ""
    return f"{c.busbw_gbps:.1f} GB/s{pct}"


def _unconfirmed(c: Recheck) -> str:
    if c.outcome is Outcome.NO_PARTNER:
        return "not re-paired: no node passed every pair"
    return f"not confirmed: re-pairing with {c.partner} gave no figure ({c.error or 'no figure'})"
