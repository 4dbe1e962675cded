"""Lemons judged from a node's events alone (compute/services/lemons.py), in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from compute.config_lemons import LemonAction, LemonSettings
from compute.domain import AUTOMATION, Event, EventKind
from compute.services.lemons import judge, mark, repeat_failures

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CFG = LemonSettings()


def ev(day: float, kind: str, **detail: object) -> Event:
    return Event(at=T0 + timedelta(days=day), node="n1", kind=kind, detail=detail)


def fault(day: float) -> Event:
    return ev(day, EventKind.DRAIN, cause="fatal", check="gpu_count")


def cycle(day: float) -> list[Event]:
    """A fault, a failed burn-in, repair, and the node back in service two days later."""
    return [
        fault(day),
        ev(day + 0.5, EventKind.BURN_IN_FAILED),
        ev(day + 0.5, EventKind.REPAIR),
        ev(day + 2, EventKind.BURN_IN_PASSED),
        ev(day + 2, EventKind.RESUME),
    ]


def test_defaults_are_three_in_thirty_days_escalated() -> None:
    assert (CFG.failures, CFG.window_days, CFG.action) == (3, 30, LemonAction.RMA)


def test_three_failures_after_repair_make_a_lemon_two_do_not() -> None:
    # The first fault had no repair before it: an ordinary fault, not a repeat.
    events = cycle(0) + cycle(5) + cycle(10)
    assert [f.at for f in repeat_failures(events)] == [
        T0 + timedelta(days=5),
        T0 + timedelta(days=10),
    ]
    assert judge("n1", events, T0 + timedelta(days=11), CFG) is None
    events += [fault(15)]
    case = judge("n1", events, T0 + timedelta(days=15), CFG)
    assert case is not None and len(case.failures) == 3


def test_one_failure_per_return_however_long_the_episode() -> None:
    # After the return: a drain, its burn-in fails, the drain again: one repeat, not three.
    events = [*cycle(0), fault(5), ev(5.5, EventKind.BURN_IN_FAILED), fault(6)]
    assert len(repeat_failures(events)) == 1


def test_operator_drains_and_moves_are_not_failures() -> None:
    events = cycle(0)
    events += [ev(3, EventKind.DRAIN, cause="operator"), ev(3.1, EventKind.DRAIN, moved=["j1"])]
    assert repeat_failures(events) == []


def test_a_failed_checkup_after_repair_is_a_repeat() -> None:
    events = [*cycle(0), ev(4, EventKind.BURN_IN_STARTED), ev(4.5, EventKind.BURN_IN_FAILED)]
    assert len(repeat_failures(events)) == 1


def test_a_drain_lifted_outside_computectl_is_a_return_too() -> None:
    events = [fault(0), ev(1, EventKind.REPAIR), ev(2, EventKind.EXTERNAL_RESUME), fault(3)]
    assert len(repeat_failures(events)) == 1


def test_repeats_outside_the_window_do_not_count() -> None:
    events = cycle(0) + cycle(5) + cycle(10) + [fault(15)]
    assert judge("n1", events, T0 + timedelta(days=34), CFG) is not None
    # Day 50: the window starts on day 20, after every repeat.
    assert judge("n1", events, T0 + timedelta(days=50), CFG) is None
    wide = LemonSettings(window_days=60)
    assert judge("n1", events, T0 + timedelta(days=50), wide) is not None


def test_marked_once_per_episode() -> None:
    events = cycle(0) + cycle(5) + cycle(10) + [fault(15)]
    now = T0 + timedelta(days=15)
    case = judge("n1", events, now, CFG)
    assert case is not None
    lemon = mark(case, "training", now, CFG)
    assert lemon.kind == EventKind.LEMON and lemon.actor == AUTOMATION
    assert lemon.detail["action"] == "rma" and len(lemon.detail["failures"]) == 3
    assert "failed again after repair 3 times in 30 days" in lemon.reason
    events.append(lemon)
    assert judge("n1", events, now, CFG) is None  # the same repeats are not counted again
    # Repaired and failing again: one new repeat is not a new episode yet; three are.
    events += [ev(16, EventKind.REPAIR), ev(17, EventKind.RESUME), fault(18)]
    assert judge("n1", events, T0 + timedelta(days=18), CFG) is None
    events += [ev(19, EventKind.REPAIR), ev(20, EventKind.RESUME), fault(21)]
    assert judge("n1", events, T0 + timedelta(days=21), CFG) is None
    events += [ev(22, EventKind.REPAIR), ev(23, EventKind.RESUME), fault(24)]
    again = judge("n1", events, T0 + timedelta(days=24), CFG)
    assert again is not None and [f.at.day for f in again.failures] == [19, 22, 25]


@pytest.mark.parametrize(
    "bad",
    [
        {"failures": 0},
        {"failures": True},
        {"window_days": 0},
        {"window_days": "30"},
        {"action": "shred"},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LemonSettings.model_validate(bad)


@given(st.lists(st.integers(min_value=0, max_value=3), max_size=40))
def test_never_more_repeats_than_returns(steps: list[int]) -> None:
    kinds = [EventKind.REPAIR, EventKind.RESUME, EventKind.DRAIN, EventKind.BURN_IN_FAILED]
    events = [ev(i, kinds[s], cause="fatal") for i, s in enumerate(steps)]
    returns = sum(1 for e in events if e.kind == EventKind.RESUME)
    found = repeat_failures(events)
    assert len(found) <= returns
    assert all(e.kind in (EventKind.DRAIN, EventKind.BURN_IN_FAILED) for e in found)
