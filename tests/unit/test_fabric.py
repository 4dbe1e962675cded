"""Pair planning and the slow-link verdicts of the multi-node pair test."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.fabric import PairFigure, judge, ring_rounds


@given(st.integers(min_value=0, max_value=64))
def test_rounds_are_disjoint_and_give_every_node_two_partners(k: int) -> None:
    nodes = [f"n{i:02d}" for i in range(k)]
    rounds = ring_rounds(nodes)
    partners: dict[str, set[str]] = {n: set() for n in nodes}
    for pairs in rounds:
        seen = Counter(n for p in pairs for n in p)
        assert all(c == 1 for c in seen.values())  # a node is in one pair per round
        for a, b in pairs:
            assert a != b
            partners[a].add(b)
            partners[b].add(a)
    if k >= 3:
        assert all(len(p) == 2 for p in partners.values())
        assert len(rounds) == (2 if k % 2 == 0 else 3)
    elif k == 2:
        assert rounds == [[("n00", "n01")]]
    else:
        assert rounds == []


def _figures(bw: dict[tuple[str, str], float | None]) -> list[PairFigure]:
    return [PairFigure(p, v, "" if v is not None else "job failed: exit 1") for p, v in bw.items()]


def _ring(k: int) -> list[tuple[str, str]]:
    return [p for r in ring_rounds([f"n{i}" for i in range(k)]) for p in r]


def test_healthy_pool_has_no_suspects() -> None:
    report = judge(_figures({p: 380.0 + i for i, p in enumerate(_ring(8))}))
    assert report.healthy and report.judged
    assert report.suspect_nodes == {} and report.suspect_links == ()
    assert report.inconclusive == () and report.untested == ()
    assert 380.0 < (report.reference_gbps or 0) < 388.0


def test_a_slow_node_is_slow_with_both_partners() -> None:
    bw: dict[tuple[str, str], float | None] = {p: 380.0 for p in _ring(8)}
    for p in bw:
        if "n3" in p:
            bw[p] = 190.0
    report = judge(_figures(bw))
    assert list(report.suspect_nodes) == ["n3"]
    assert "n2 (190.0 GB/s, 50% of the reference)" in report.suspect_nodes["n3"]
    assert report.suspect_links == () and report.inconclusive == ()


@pytest.mark.parametrize(
    ("k", "bad"),
    [
        (3, {"n1"}),  # one bad node spoils two of three pairs: the pairs' median is slow
        (5, {"n1", "n2"}),  # two bad neighbours
        (8, {"n1", "n5"}),
    ],
)
def test_bad_nodes_in_small_rings_are_found(k: int, bad: set[str]) -> None:
    bw: dict[tuple[str, str], float | None] = {p: 10.0 if set(p) & bad else 100.0 for p in _ring(k)}
    report = judge(_figures(bw))
    assert report.reference_gbps == 100.0
    assert set(report.suspect_nodes) == bad


def test_a_slow_pair_of_healthy_nodes_is_the_link() -> None:
    bw: dict[tuple[str, str], float | None] = {p: 380.0 for p in _ring(6)}
    bw[("n4", "n5")] = 250.0
    report = judge(_figures(bw))
    assert report.suspect_nodes == {}
    assert report.suspect_links == (("n4", "n5"),)
    assert report.inconclusive == ()


def test_a_pair_without_a_figure_is_failed_not_slow() -> None:
    """A job that never ran measured nothing: it must not make its nodes suspects (a busy
    queue, or a wrong node command, would otherwise condemn the whole pool)."""
    bw: dict[tuple[str, str], float | None] = {p: 380.0 for p in _ring(4)}
    for p in bw:
        if "n0" in p:
            bw[p] = None
    report = judge(_figures(bw))
    assert report.suspect_nodes == {}
    assert report.untested == ("n0",)
    assert not report.healthy
    failed = [v for v in report.pairs if v.failed]
    assert len(failed) == 2 and all(not v.slow for v in failed)
    assert failed[0].error == "job failed: exit 1"
    everything_failed = judge(_figures(dict.fromkeys(_ring(6))))
    assert everything_failed.suspect_nodes == {} and len(everything_failed.untested) == 6


def test_a_slow_pair_beside_a_failed_one_is_inconclusive() -> None:
    bw: dict[tuple[str, str], float | None] = {p: 380.0 for p in _ring(4)}
    bw[("n0", "n1")] = 100.0
    bw[("n3", "n0")] = None
    report = judge(_figures(bw))
    assert report.suspect_nodes == {} and report.suspect_links == ()
    assert report.inconclusive == ("n0",)


def test_two_nodes_are_judged_by_the_floor_only() -> None:
    unjudged = judge([PairFigure(("a", "b"), 100.0)])
    assert not unjudged.judged and unjudged.healthy and unjudged.reference_gbps is None
    report = judge([PairFigure(("a", "b"), 100.0)], floor_gbps=300.0)
    assert report.judged and not report.healthy
    assert report.pairs[0].ratio == pytest.approx(1 / 3)
    assert set(report.inconclusive) == {"a", "b"}
    assert report.suspect_nodes == {} and report.suspect_links == ()


def test_floor_catches_a_uniformly_slow_fabric() -> None:
    bw: dict[tuple[str, str], float | None] = {p: 100.0 for p in _ring(4)}
    report = judge(_figures(bw), floor_gbps=300.0)
    assert set(report.suspect_nodes) == {"n0", "n1", "n2", "n3"}
    assert judge(_figures(bw)).healthy
