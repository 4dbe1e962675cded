"""Finding the slow link: plan pair tests over a pool's nodes and judge their figures.

Pure functions. Nodes are paired along a ring, in rounds that share no node, so
every node meets two different partners (three rounds where the count is odd).

A pair is slow when its bus bandwidth falls below a fraction of the reference,
or below an absolute floor where one is configured. The reference is the
median over nodes of each node's best pair: a bad node spoils both of its pairs,
so a plain median of pairs would sink with a few bad nodes in a small ring,
while a node's best pair stays healthy unless both its partners are bad. With
fewer than three measured nodes there is no reference, and only a floor judges.

A pair without a figure (its job failed, or never ran before the timeout) is
not slow: nothing was measured. It is reported as failed, and a node with no
figure at all is untested; neither is evidence against a node.

Then:
- a node slow with every partner (two or more, every pair measured) is the
  suspect: its NIC, cable or GPU;
- a slow pair of two nodes that are each fine with another partner points at
  the path between them (a switch port, a cable between leaves): the link;
- a node in a slow pair that is neither of these, and is fine with no other
  partner, is inconclusive.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_SLOW_RATIO = 0.8


def ring_rounds(nodes: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Rounds of disjoint pairs covering the ring n0-n1-...-n(k-1)-n0.

    Two nodes: one pair. An even ring: two rounds (even edges, then odd edges).
    An odd ring: the closing edge meets both of its neighbours' pairs, so it
    runs alone in a third round.
    """
    names = list(dict.fromkeys(nodes))
    k = len(names)
    if k < 2:
        return []
    if k == 2:
        return [[(names[0], names[1])]]
    edges = [(names[i], names[(i + 1) % k]) for i in range(k)]
    if k % 2 == 0:
        return [edges[0::2], edges[1::2]]
    return [edges[0 : k - 1 : 2], edges[1 : k - 1 : 2], [edges[k - 1]]]


@dataclass(frozen=True, slots=True)
class PairFigure:
    nodes: tuple[str, str]
    busbw_gbps: float | None  # None: the pair produced no figure
    error: str = ""
    job: str = ""


@dataclass(frozen=True, slots=True)
class PairVerdict:
    nodes: tuple[str, str]
    busbw_gbps: float | None  # None: no figure (see error)
    ratio: float | None  # to the reference, where there is one
    slow: bool  # measured, and below the bar
    error: str = ""
    job: str = ""

    @property
    def failed(self) -> bool:
        return self.busbw_gbps is None


@dataclass(frozen=True, slots=True)
class FabricReport:
    reference_gbps: float | None  # the median of the nodes' best pairs (3+ nodes measured)
    floor_gbps: float | None
    slow_ratio: float
    pairs: tuple[PairVerdict, ...]
    suspect_nodes: dict[str, str] = field(default_factory=dict)  # node -> evidence
    suspect_links: tuple[tuple[str, str], ...] = ()
    inconclusive: tuple[str, ...] = ()
    untested: tuple[str, ...] = ()  # nodes none of whose pairs gave a figure

    @property
    def healthy(self) -> bool:
        """Every pair measured, and none slow."""
        return not any(p.slow or p.failed for p in self.pairs)

    @property
    def judged(self) -> bool:
        """Whether anything could be called slow: a reference or a floor."""
        return self.reference_gbps is not None or self.floor_gbps is not None


def reference(figures: Sequence[PairFigure]) -> float | None:
    """The median over nodes of each node's best measured pair (None below three nodes)."""
    best: dict[str, float] = {}
    for f in figures:
        if f.busbw_gbps is None:
            continue
        for n in f.nodes:
            best[n] = max(best.get(n, 0.0), f.busbw_gbps)
    return statistics.median(best.values()) if len(best) >= 3 else None


def judge(
    figures: Sequence[PairFigure],
    slow_ratio: float = DEFAULT_SLOW_RATIO,
    floor_gbps: float | None = None,
) -> FabricReport:
    ref = reference(figures)
    bar = max(slow_ratio * ref if ref is not None else 0.0, floor_gbps or 0.0)
    judged = ref is not None or floor_gbps is not None
    base = ref if ref is not None else floor_gbps
    verdicts = [
        PairVerdict(
            f.nodes,
            f.busbw_gbps,
            f.busbw_gbps / base if f.busbw_gbps is not None and base else None,
            judged and f.busbw_gbps is not None and f.busbw_gbps < bar,
            f.error if f.busbw_gbps is not None else (f.error or "no figure"),
            f.job,
        )
        for f in figures
    ]
    by_node: dict[str, list[PairVerdict]] = {}
    for v in verdicts:
        for n in v.nodes:
            by_node.setdefault(n, []).append(v)
    suspects: dict[str, str] = {}
    for node, mine in by_node.items():
        partners = {p for v in mine for p in v.nodes if p != node}
        if len(partners) >= 2 and all(v.slow for v in mine):
            suspects[node] = "slow with every partner: " + ", ".join(
                _evidence(v, node) for v in mine
            )

    def fine_elsewhere(node: str, pair: PairVerdict) -> bool:
        return any(v is not pair and not v.failed and not v.slow for v in by_node[node])

    links = tuple(
        v.nodes
        for v in verdicts
        if v.slow
        and not any(n in suspects for n in v.nodes)
        and all(fine_elsewhere(n, v) for n in v.nodes)
    )
    linked = {n for link in links for n in link}
    # A node fine with another partner is cleared of its slow pair; one that is not, and is
    # neither a suspect nor half of a suspect link, cannot be told apart from its link.
    inconclusive = tuple(
        n
        for n, mine in by_node.items()
        if n not in suspects
        and n not in linked
        and any(v.slow and not fine_elsewhere(n, v) for v in mine)
    )
    untested = tuple(n for n, mine in by_node.items() if all(v.failed for v in mine))
    return FabricReport(
        reference_gbps=ref,
        floor_gbps=floor_gbps,
        slow_ratio=slow_ratio,
        pairs=tuple(verdicts),
        suspect_nodes=suspects,
        suspect_links=links,
        inconclusive=inconclusive,
        untested=untested,
    )


def _evidence(v: PairVerdict, node: str) -> str:
    partner = next(n for n in v.nodes if n != node)
    pct = f", {v.ratio:.0%} of the reference" if v.ratio is not None else ""
    return f"{partner} ({v.busbw_gbps:.1f} GB/s{pct})"
