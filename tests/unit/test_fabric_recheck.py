"""Re-pairing suspects with a known-good partner before the pair test's verdict stands."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from health.fabric import PairFigure, judge, ring_rounds
from health.fabric_recheck import Outcome, candidates, known_good, plan, rejudge

GOOD, SLOW = 370.0, 120.0


def _ring(names: list[str]) -> list[tuple[str, str]]:
    return [p for r in ring_rounds(names) for p in r]


def _measure(
    pairs: list[tuple[str, str]], bad: set[str], links: set[frozenset[str]] = frozenset()
) -> list[PairFigure]:
    """Each pair slow when a node of it is bad or the pair is a bad link."""
    return [PairFigure(p, SLOW if bad & set(p) or frozenset(p) in links else GOOD) for p in pairs]


def _flat(rounds: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    return [p for r in rounds for p in r]


def test_a_healthy_node_between_two_bad_ones_is_cleared_and_they_are_confirmed() -> None:
    names = ["a", "b1", "h", "b2", "c", "d"]
    bad = {"b1", "b2"}
    report = judge(_measure(_ring(names), bad))
    # The ring alone names the healthy node between them too.
    assert set(report.suspect_nodes) == {"b1", "h", "b2"}
    assert known_good(report) == ["d"]
    rounds = plan(report)
    assert rounds == [[("b1", "d")], [("h", "d")], [("b2", "d")]]
    final, checks = rejudge(report, _measure(_flat(rounds), bad))
    assert set(final.suspect_nodes) == {"b1", "b2"}
    assert {c.node: c.outcome for c in checks} == {
        "b1": Outcome.CONFIRMED,
        "h": Outcome.CLEARED,
        "b2": Outcome.CONFIRMED,
    }
    assert "again with known-good d" in final.suspect_nodes["b1"]
    assert final.suspect_nodes["b1"].startswith("slow with every partner and again")
    # h's slow pairs were its partners' fault: no link is blamed.
    assert final.suspect_links == ()
    assert final.inconclusive == ()


def test_a_node_slow_only_through_its_links_is_cleared_and_the_link_named() -> None:
    # h is slow with both ring partners, each through a bad link; fine with anyone else.
    names = ["a", "b", "h", "c", "d", "e"]
    links = {frozenset({"b", "h"}), frozenset({"h", "c"})}
    report = judge(_measure(_ring(names), set(), links))
    assert list(report.suspect_nodes) == ["h"]
    final, checks = rejudge(report, _measure(_flat(plan(report)), set(), links))
    assert final.suspect_nodes == {}
    assert [c.outcome for c in checks] == [Outcome.CLEARED]
    assert set(final.suspect_links) == {("b", "h"), ("h", "c")}


def test_an_inconclusive_node_is_confirmed_or_cleared() -> None:
    # Three nodes: b's pair with c failed, so b's one slow pair cannot tell node from link.
    figures = [
        PairFigure(("a", "b"), SLOW),
        PairFigure(("b", "c"), None, "exit 1"),
        PairFigure(("c", "a"), GOOD),
        PairFigure(("a", "d"), GOOD),
        PairFigure(("d", "c"), GOOD),
    ]
    report = judge(figures)
    assert "b" in report.inconclusive
    assert candidates(report) == ["b"]
    partner = plan(report)[0][0][1]
    slow_again, _ = rejudge(report, [PairFigure(("b", partner), SLOW)])
    assert "b" in slow_again.suspect_nodes and "b" not in slow_again.inconclusive
    fast, _ = rejudge(report, [PairFigure(("b", partner), GOOD)])
    assert fast.suspect_nodes == {} and fast.inconclusive == ()
    assert ("a", "b") in fast.suspect_links


def test_no_figure_or_no_partner_leaves_the_ring_verdict_standing() -> None:
    names = ["a", "b", "c", "d"]
    report = judge(_measure(_ring(names), {"b"}))
    assert list(report.suspect_nodes) == ["b"]
    final, checks = rejudge(report, [PairFigure(("b", "d"), None, "srun exit 1: boom")])
    assert list(final.suspect_nodes) == ["b"]
    assert checks[0].outcome is Outcome.NO_FIGURE
    assert (
        "not confirmed: re-pairing with d gave no figure (srun exit 1: boom)"
        in (final.suspect_nodes["b"])
    )
    # Every node of this ring has a slow pair: no one passed everywhere.
    everyone = judge(_measure(_ring(["a", "b", "c"]), {"a", "b", "c"}, set()), floor_gbps=300.0)
    assert plan(everyone) == []
    final, checks = rejudge(everyone, [])
    assert set(final.suspect_nodes) == {"a", "b", "c"}
    assert {c.outcome for c in checks} == {Outcome.NO_PARTNER}
    assert all("not re-paired" in e for e in final.suspect_nodes.values())


def test_nothing_to_recheck_when_unjudged_or_healthy() -> None:
    assert plan(judge(_measure(_ring(["a", "b"]), {"a"}))) == []  # no reference, no floor
    assert plan(judge(_measure(_ring(["a", "b", "c", "d"]), set()))) == []


@given(
    st.integers(min_value=3, max_value=24),
    st.sets(st.integers(min_value=0, max_value=23), max_size=8),
)
def test_bad_nodes_are_confirmed_and_good_ones_never_are(k: int, bad_idx: set[int]) -> None:
    names = [f"n{i:02d}" for i in range(k)]
    bad = {names[i] for i in bad_idx if i < k}
    # A floor keeps the bar fixed however many nodes are bad.
    report = judge(_measure(_ring(names), bad), floor_gbps=300.0)
    rounds = plan(report)
    for r in rounds:  # disjoint pairs within a round, each a suspect with a good node
        assert all(c == 1 for c in Counter(n for p in r for n in p).values())
        assert all(p[1] not in bad for p in r)
    final, checks = rejudge(report, _measure(_flat(rounds), bad))
    assert set(final.suspect_nodes) <= bad | {c.node for c in checks if not c.partner}
    if rounds:  # someone passed everywhere: every bad node is confirmed, the rest cleared
        assert set(final.suspect_nodes) == bad
        assert final.inconclusive == ()
