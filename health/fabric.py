"""Finding the slow link: plan pair tests over a pool's nodes and judge their figures.

Pure functions. Nodes are paired along a ring, in rounds that share no node, so
every node meets two different partners (three rounds where the count is odd).
A pair is slow when its bus bandwidth falls below a fraction of the median
pair (the pool's own healthy figure, whatever its fabric), or below an absolute
floor where one is configured; a pair that produced no figure counts as slow.
Then:
- a node slow with every partner is the suspect (its NIC, cable, or GPU);
- a slow pair whose nodes are both fine elsewhere points at the path between
  them (a switch port or a cable between leaves): the link is the suspect;
- a node with a single slow pair and no second partner is inconclusive.
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
    busbw_gbps: float | None
    ratio: float | None  # to the reference (median or floor)
    slow: bool
    error: str = ""
    job: str = ""


@dataclass(frozen=True, slots=True)
class FabricReport:
    reference_gbps: float | None  # the median of the pairs with a figure
    floor_gbps: float | None
    slow_ratio: float
    pairs: tuple[PairVerdict, ...]
    suspect_nodes: dict[str, str] = field(default_factory=dict)  # node -> evidence
    suspect_links: tuple[tuple[str, str], ...] = ()
    inconclusive: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not any(p.slow for p in self.pairs)


def judge(
    figures: Sequence[PairFigure],
    slow_ratio: float = DEFAULT_SLOW_RATIO,
    floor_gbps: float | None = None,
) -> FabricReport:
    measured = [f.busbw_gbps for f in figures if f.busbw_gbps is not None]
    reference = statistics.median(measured) if measured else None
    verdicts = []
    for f in figures:
        if f.busbw_gbps is None:
            verdicts.append(PairVerdict(f.nodes, None, None, True, f.error or "no figure", f.job))
            continue
        bar = max(
            slow_ratio * reference if reference else 0.0,
            floor_gbps or 0.0,
        )
        base = reference or floor_gbps
        verdicts.append(
            PairVerdict(
                f.nodes,
                f.busbw_gbps,
                f.busbw_gbps / base if base else None,
                f.busbw_gbps < bar,
                f.error,
                f.job,
            )
        )
    by_node: dict[str, list[PairVerdict]] = {}
    for v in verdicts:
        for n in v.nodes:
            by_node.setdefault(n, []).append(v)
    suspects: dict[str, str] = {}
    inconclusive: list[str] = []
    for node, mine in by_node.items():
        if not all(v.slow for v in mine):
            continue
        partners = {p for v in mine for p in v.nodes if p != node}
        if len(partners) >= 2:
            suspects[node] = "slow with every partner: " + ", ".join(
                _evidence(v, node) for v in mine
            )
        else:
            inconclusive.append(node)
    links = tuple(
        v.nodes
        for v in verdicts
        if v.slow and not any(n in suspects for n in v.nodes) and not _alone(v, by_node)
    )
    return FabricReport(
        reference_gbps=reference,
        floor_gbps=floor_gbps,
        slow_ratio=slow_ratio,
        pairs=tuple(verdicts),
        suspect_nodes=suspects,
        suspect_links=links,
        inconclusive=tuple(inconclusive),
    )


def _alone(v: PairVerdict, by_node: dict[str, list[PairVerdict]]) -> bool:
    """Neither node of the pair had another partner: nothing tells node from link."""
    return all(len(by_node[n]) < 2 for n in v.nodes)


def _evidence(v: PairVerdict, node: str) -> str:
    partner = next(n for n in v.nodes if n != node)
    if v.busbw_gbps is None:
        return f"{partner} (no figure: {v.error})"
    pct = f", {v.ratio:.0%} of the median" if v.ratio is not None else ""
    return f"{partner} ({v.busbw_gbps:.1f} GB/s{pct})"
