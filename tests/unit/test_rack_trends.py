"""A rack's trend summed in the database (compute/store/topology.rack_trends) is the
least-squares slope compute/services/forecast.py reads from the same points."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from compute.domain import RackPower
from compute.services.forecast import slope, timed
from compute.store import Store
from compute.store import topology as kept
from compute.store.models import RackPowerRow
from compute.testing import EPOCH

series = st.lists(
    st.tuples(st.integers(0, 3_600), st.floats(0, 200_000, allow_nan=False)),
    min_size=1,
    max_size=40,
    unique_by=lambda p: p[0],
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path_factory.mktemp('trends') / 'x.db'}")
    yield opened
    opened.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(series, series)
def test_sql_trend_matches_the_python_slope(
    store: Store, a: list[tuple[int, float]], b: list[tuple[int, float]]
) -> None:
    with store.transaction() as tx:
        tx.s.execute(delete(RackPowerRow))
        for rack, points in (("ra", a), ("rb", b)):
            tx.add_rack_power(
                [RackPower(rack, EPOCH + timedelta(seconds=s), w, 0.0) for s, w in sorted(points)]
            )
    got = kept.rack_trends(store, EPOCH)
    for rack, points in (("ra", a), ("rb", b)):
        timed_points = sorted((EPOCH + timedelta(seconds=s), w) for s, w in points)
        want = slope(timed(timed_points))
        assert got[rack].points == len(points)
        assert got[rack].watts == timed_points[-1][1]
        # SQLite's julianday() holds times to tens of microseconds: slopes agree to that.
        assert math.isclose(got[rack].per_second, want, rel_tol=2e-4, abs_tol=1e-3)
    assert kept.rack_trends(store, EPOCH + timedelta(hours=2)) == {}
