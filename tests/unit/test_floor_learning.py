"""Learned floors, pure (health/floor_learning.py): never below the fixed floor, stable under
a few extreme figures, sensible as the fleet moves, the fixed floor where too few figures."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from health.floor_learning import LearningRule, below, learn, stack_key, usable

RULE = LearningRule()
CENTER = 680.0
FIXED = 610.0

# A fleet's figures around CENTER: each within +-spread of it.
spreads = st.floats(min_value=0.0, max_value=0.03)
units = st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=32, max_size=300)
figures_any = st.lists(st.floats(), max_size=200)
fixed_any = st.floats(min_value=1.0, max_value=1e5)


def fleet(us: list[float], spread: float) -> list[float]:
    return [CENTER * (1.0 + spread * u) for u in us]


@given(figures_any, fixed_any)
def test_never_below_the_fixed_floor(figures: list[float], fixed: float) -> None:
    f = learn(figures, fixed, RULE)
    assert f.floor >= fixed
    assert f.floor <= fixed * RULE.max_raise
    assert math.isfinite(f.floor)


@given(units, spreads)
def test_learned_floor_sits_under_the_median(us: list[float], spread: float) -> None:
    f = learn(fleet(us, spread), FIXED, RULE)
    assert f.learned and f.median is not None
    assert f.floor <= max(FIXED, f.median * (1.0 - RULE.min_margin)) + 1e-9


@settings(max_examples=200)
@given(
    st.integers(min_value=32, max_value=400),
    st.lists(st.floats(min_value=0.0, max_value=1e7), min_size=1, max_size=3),
)
def test_stable_under_added_outliers(n: int, outliers: list[float]) -> None:
    """A fleet spread evenly over +-1.5 % of its centre: up to 3 added figures, of any size
    (a failed kernel's 0, a counter's nonsense), move the floor by under 1 % of the centre."""
    base = [CENTER * (1.0 + 0.015 * (2.0 * i / (n - 1) - 1.0)) for i in range(n)]
    before = learn(base, FIXED, RULE).floor
    after = learn(base + outliers, FIXED, RULE).floor
    assert abs(after - before) <= 0.01 * CENTER


@given(units, spreads, st.lists(st.floats(min_value=0.0, max_value=1e9), max_size=4))
def test_outliers_move_it_no_more_than_their_count_of_ranks(
    us: list[float], spread: float, outliers: list[float]
) -> None:
    """Whatever their size, a few added figures move the floor no further than the fleet's
    own band allows: the floor stays within the band's reach (median and MAD are ranks)."""
    base = fleet(us, spread)
    lo, hi = min(base), max(base)
    width = hi - lo
    before = learn(base, FIXED, RULE).floor
    after = learn(base + outliers, FIXED, RULE).floor
    reach = (1.0 + RULE.k * 1.4826) * width + RULE.min_margin * hi
    assert abs(after - before) <= reach + 1e-6


@given(units, spreads, st.floats(min_value=0.0, max_value=200.0))
def test_a_faster_fleet_never_lowers_its_floor(us: list[float], spread: float, up: float) -> None:
    base = fleet(us, spread)
    assert learn([f + up for f in base], FIXED, RULE).floor >= learn(base, FIXED, RULE).floor - 1e-9


@given(units, spreads, st.floats(min_value=1.0, max_value=900.0))
def test_a_higher_fixed_floor_never_lowers_it(us: list[float], spread: float, fixed: float) -> None:
    base = fleet(us, spread)
    assert learn(base, fixed + 10.0, RULE).floor >= learn(base, fixed, RULE).floor


@given(st.lists(st.floats(min_value=600.0, max_value=700.0), max_size=31))
def test_too_few_figures_keep_the_fixed_floor_and_say_so(figures: list[float]) -> None:
    f = learn(figures, FIXED, RULE)
    assert not f.learned
    assert f.floor == FIXED
    assert f.reason
    assert not below(0.0, f)  # the fixed floor is the node's own verdict, not judged again


def test_too_few_nodes_keep_the_fixed_floor() -> None:
    f = learn([CENTER] * 64, FIXED, RULE, nodes=2)
    assert not f.learned and "2 nodes" in f.reason


def test_a_gpu_slow_by_8_percent_is_caught_where_the_fixed_floor_passes_it() -> None:
    healthy = [CENTER * (1.0 + 0.015 * (2.0 * i / 255 - 1.0)) for i in range(256)]
    f = learn(healthy, FIXED, RULE, nodes=32)
    slow = CENTER * 0.92
    assert slow > FIXED
    assert below(slow, f)
    assert not any(below(h, f) for h in healthy)  # no false drain of the fleet it learned from


def test_a_fleet_slower_than_the_reference_keeps_the_fixed_floor() -> None:
    """A fleet measuring well under the reference (a lower power cap): the learned floor
    never drains more than the fixed floor would."""
    slow_fleet = [FIXED * 1.01 + i * 0.01 for i in range(100)]
    assert learn(slow_fleet, FIXED, RULE).floor == FIXED


def test_alike_figures_leave_a_margin() -> None:
    f = learn([CENTER] * 100, FIXED, RULE)
    assert f.floor == CENTER * (1.0 - RULE.min_margin)


def test_unusable_figures_are_left_out() -> None:
    assert usable([1.0, 0.0, -3.0, math.nan, math.inf]) == [1.0]


def test_stack_key() -> None:
    assert stack_key("580.1", "13.0", "") == "driver=580.1 cuda=13.0 torch=-"
