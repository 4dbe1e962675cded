"""A rack's standing against its budget (compute/services/rack_budgets.judge): over once,
back under once, with hysteresis; a rising trend warns early, a falling one never forgives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from compute.config_topology import TopologySettings
from compute.domain import Node
from compute.services.forecast import slope, timed
from compute.services.rack_budgets import judge
from compute.services.rack_caps import eligible
from compute.store.topology import RackInfo, Standing, Trend
from compute.testing import EPOCH
from health.policy import Lifecycle

RACK = RackInfo(name="r01", room="hall-a", budget_watts=40_000.0)
TOPO = TopologySettings(forecast_minutes=30, recover_fraction=0.05)


def trend(series: list[tuple[datetime, float]]) -> Trend:
    return Trend(series[-1][1], slope(timed(series)), len(series))


def flat(watts: float, at: datetime = EPOCH) -> Trend:
    return trend([(at, watts)])


def test_over_then_held_over_at_the_line_then_back_under() -> None:
    st1 = judge(None, RACK, flat(41_000), EPOCH, TOPO)
    assert st1.over and st1.since == EPOCH and st1.detail["over_now"]
    later = EPOCH + timedelta(minutes=1)
    # Just under the budget is not back under: the line is 5 % below it.
    st2 = judge(st1, RACK, flat(39_000, later), later, TOPO)
    assert st2.over and st2.since == EPOCH
    st3 = judge(st2, RACK, flat(37_000, later), later, TOPO)
    assert not st3.over and st3.since == later


def test_a_rising_trend_is_over_before_the_draw_is() -> None:
    series = [(EPOCH + timedelta(minutes=m), 30_000.0 + 400.0 * m) for m in range(11)]
    now = series[-1][0]
    st1 = judge(None, RACK, trend(series), now, TOPO)  # 34 kW now, +400 W/min: 46 kW in 30 min
    assert st1.over and not st1.detail["over_now"]
    assert abs(st1.forecast_watts - 46_000.0) < 1.0
    off = judge(None, RACK, trend(series), now, TopologySettings(forecast_minutes=0))
    assert not off.over


def test_the_cooling_limit_is_the_limit_where_lower() -> None:
    rack = RackInfo(name="r01", room="a", budget_watts=40_000.0, cooling_limit_watts=30_000.0)
    assert judge(None, rack, flat(35_000), EPOCH, TOPO).over


@given(st.lists(st.floats(min_value=0, max_value=100_000), min_size=1, max_size=30))
def test_transitions_alternate_and_need_the_line_to_recover(draws: list[float]) -> None:
    prev: Standing | None = None
    for i, w in enumerate(draws):
        now = EPOCH + timedelta(minutes=i)
        st_ = judge(prev, RACK, flat(w, now), now, TOPO)
        if w > RACK.budget_watts:
            assert st_.over
        if prev is not None and prev.over and not st_.over:
            assert w < RACK.budget_watts * 0.95
        if prev is not None and prev.over == st_.over:
            assert st_.since == prev.since
        prev = st_


def node(name: str, rack: str, pool: str, allocated: int, state: Lifecycle) -> Node:
    return Node(
        name=name,
        pool=pool,
        rack=rack,
        gpu_model="H100-SXM",
        gpu_count=8,
        state=state,
        state_since=datetime(2026, 1, 1, tzinfo=UTC),
        gpus_allocated=allocated,
    )


def test_the_policy_caps_idle_and_inference_nodes_of_the_rack_only() -> None:
    nodes = [
        node("a", "r01", "training", 0, Lifecycle.IN_SERVICE),
        node("b", "r01", "training", 8, Lifecycle.IN_SERVICE),
        node("c", "r01", "inference", 8, Lifecycle.IN_SERVICE),
        node("d", "r01", "training", 0, Lifecycle.DRAINED),
        node("e", "r02", "training", 0, Lifecycle.IN_SERVICE),
    ]
    assert eligible(nodes, "r01", ["inference"]) == ["a", "c"]
