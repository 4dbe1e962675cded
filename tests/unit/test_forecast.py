"""The trend and headroom arithmetic (compute/services/forecast.py) against its algebra."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from compute.services import forecast

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
xs = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=40, unique=True
)


@given(xs, finite, finite)
def test_slope_of_a_line_is_its_slope(x: list[float], a: float, b: float) -> None:
    points = [(v, a * v + b) for v in x]
    if max(x) - min(x) < 1.0:
        return  # too close together for the line to be read back to this precision
    assert math.isclose(forecast.slope(points), a, rel_tol=1e-6, abs_tol=1e-6)


@given(xs, finite)
def test_slope_of_a_constant_is_zero(x: list[float], c: float) -> None:
    assert forecast.slope([(v, c) for v in x]) == 0.0


@given(st.lists(st.tuples(finite, finite), max_size=1))
def test_no_trend_from_fewer_than_two_points(points: list[tuple[float, float]]) -> None:
    assert forecast.slope(points) == 0.0


@given(finite, st.integers(min_value=2, max_value=20), st.floats(0, forecast.MIN_SPREAD / 2))
def test_no_trend_when_every_point_is_at_one_instant(x: float, n: int, jitter: float) -> None:
    assert forecast.slope([(x + (jitter if i % 2 else 0), float(i)) for i in range(n)]) == 0.0


@given(finite, finite, st.floats(min_value=0, max_value=1e6))
def test_ahead_never_forgives_and_grows_with_a_rising_trend(
    now: float, rate: float, horizon: float
) -> None:
    got = forecast.ahead(now, rate, horizon)
    assert got >= now
    if rate > 0 and horizon > 0:
        assert math.isclose(got, now + rate * horizon, rel_tol=1e-9, abs_tol=1e-6)
    else:
        assert got == now


@given(
    st.integers(min_value=0, max_value=100_000),
    st.integers(min_value=0, max_value=100_000),
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
)
def test_days_until_full(used: int, usable: int, per_day: float) -> None:
    days = forecast.days_until_full(used, usable, per_day)
    if used >= usable:
        assert days == 0.0
    elif per_day <= forecast.MIN_RATE:
        assert days is None
    else:
        assert days is not None and 0 < days < math.inf
        # At that many days the trend has filled what was free.
        assert math.isclose(used + per_day * days, usable, rel_tol=1e-9)


@given(finite, finite)
def test_headroom_and_draw_add_up_to_the_limit(limit: float, draw: float) -> None:
    assert math.isclose(forecast.headroom(limit, draw) + draw, limit, abs_tol=1e-6)


racks = st.dictionaries(
    st.sampled_from(["r01", "r02", "r03", "r04", "r05"]), st.integers(0, 64), max_size=5
)


@given(racks, racks)
def test_n_minus_one(idle: dict[str, int], allocated: dict[str, int]) -> None:
    rack, left = forecast.n_minus_one(idle, allocated)
    names = set(idle) | set(allocated)
    if not names:
        assert (rack, left) == ("", 0)
        return
    size = {r: idle.get(r, 0) + allocated.get(r, 0) for r in names}
    assert size[rack] == max(size.values())
    # Free after losing it, plus the work moved, is what was idle elsewhere.
    assert left + allocated.get(rack, 0) == sum(idle.values()) - idle.get(rack, 0)
    assert left <= sum(idle.values())
