"""An operator's clear of a lemon mark, judged in memory (compute/services/lemons.py), and
`nodes clear-lemon` through a server that answers anything (compute/client/lemon_ops.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.domain import Event, EventKind
from compute.services.lemons import current, judge, mark, repeat_failures
from tests.unit.test_cli_remote import (
    Hostile,
    Reply,
    hostile_answers,
    no_client_config,
    problem,
    run,
    server,
    url,
)
from tests.unit.test_lemons import CFG, T0, cycle, ev, fault

# Fixtures of the remote CLI's tests, used here as they are there.
__all__ = ["no_client_config", "server"]


def cleared(day: float) -> Event:
    return ev(day, EventKind.LEMON_CLEARED, reason="board replaced")


def lemon_at(day: float) -> list[Event]:
    """Three repeats after repair, the third on ``day``, and the mark they make."""
    events = cycle(day - 15) + cycle(day - 10) + cycle(day - 5) + [fault(day)]
    case = judge("n1", events, T0 + timedelta(days=day), CFG)
    assert case is not None
    return [*events, mark(case, "training", T0 + timedelta(days=day), CFG)]


def test_after_a_clear_the_count_starts_again() -> None:
    events = [*lemon_at(15), cleared(16)]
    now = T0 + timedelta(days=16)
    assert judge("n1", events, now, CFG) is None
    assert repeat_failures(events) == []
    # Two new repeats after the clear: not a lemon; the third makes a new mark of these only.
    for day in (17, 20):
        events += [ev(day, EventKind.REPAIR), ev(day + 1, EventKind.RESUME), fault(day + 2)]
    assert judge("n1", events, T0 + timedelta(days=22), CFG) is None
    events += [ev(23, EventKind.REPAIR), ev(24, EventKind.RESUME), fault(25)]
    again = judge("n1", events, T0 + timedelta(days=25), CFG)
    assert again is not None
    assert [f.at for f in again.failures] == [T0 + timedelta(days=d) for d in (19, 22, 25)]


def test_repeats_before_a_clear_do_not_count_even_without_a_mark() -> None:
    # A clear only ever follows a mark (the service refuses one otherwise); the judgement
    # itself does not depend on that: what came before a clear is not counted.
    events = cycle(0) + cycle(5) + [cleared(6)] + cycle(10) + [fault(15)]
    assert [f.at.day for f in repeat_failures(events)] == [11, 16]
    assert judge("n1", events, T0 + timedelta(days=15), CFG) is None


def test_a_return_before_the_clear_still_makes_the_next_failure_a_repeat() -> None:
    # Cleared while back in service after its repair: the next failure is a repeat of that
    # repair, counted toward the next mark.
    events = [*lemon_at(15), ev(16, EventKind.REPAIR), ev(17, EventKind.RESUME), cleared(18)]
    events.append(fault(19))
    assert [f.at.day for f in repeat_failures(events)] == [20]


def test_the_mark_in_force_is_the_newest_unless_cleared() -> None:
    marked = lemon_at(15)[-1]
    assert current([]) is None
    assert current([marked]) is marked
    assert current([cleared(16), marked]) is None
    again = ev(30, EventKind.LEMON)
    assert current([again, cleared(16), marked]) is again


STEPS = [
    EventKind.REPAIR,
    EventKind.RESUME,
    EventKind.DRAIN,
    EventKind.BURN_IN_FAILED,
    EventKind.LEMON_CLEARED,
]


@given(st.lists(st.integers(min_value=0, max_value=len(STEPS) - 1), max_size=60))
def test_a_clear_only_forgets_the_repeats_before_it(steps: list[int]) -> None:
    events = [ev(i, STEPS[s], cause="fatal") for i, s in enumerate(steps)]
    found = repeat_failures(events)
    clears = [e.at for e in events if e.kind == EventKind.LEMON_CLEARED]
    # The same history without its clears counts the same repeats, less those before the
    # last clear: a clear changes nothing else (repairs and returns before it still hold).
    without = repeat_failures([e for e in events if e.kind != EventKind.LEMON_CLEARED])
    after = max(clears, default=None)
    assert found == [f for f in without if after is None or f.at > after]
    # No judgement counts a repeat from before the last clear.
    far = T0 + timedelta(days=len(steps) + 1)
    case = judge("n1", events, far, CFG.model_copy(update={"failures": 1, "window_days": 3660}))
    assert case is None or all(after is None or f.at > after for f in case.failures)


# -- the command through a server -----------------------------------------------------------

ARGS = ["nodes", "clear-lemon", "gpu-001", "--reason", "board replaced"]
ANSWER = {
    "node": "gpu-001",
    "cleared_at": "2026-12-01T10:00:00+00:00",
    "reason": "board replaced",
    "actor": "operator:alice",
    "mark": {"at": "2026-11-20T08:30:00+00:00", "reason": "lemon: failed again"},
}


def test_the_command_posts_the_reason_and_says_what_it_cleared(
    server: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(200, json.dumps(ANSWER).encode())
    code, out, err = run(url(server), ARGS, capsys)
    assert (code, err) == (0, "")
    assert out == "gpu-001: lemon mark of 2026-11-20 08:30:00 UTC cleared\n"
    method, path, _, body = server.reply.seen[-1]
    assert (method, path) == ("POST", "/api/v1/nodes/gpu-001/lemon/clear")
    assert json.loads(body) == {"reason": "board replaced"}
    code, out, _ = run(url(server), [*ARGS, "-o", "json"], capsys)
    assert code == 0 and json.loads(out) == ANSWER


def test_a_node_that_is_no_lemon_is_one_line_and_exit_2(
    server: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    line = "gpu-001 is not marked a lemon; nothing to clear"
    server.reply = Reply(409, problem(409, "refused", line))
    assert run(url(server), ARGS, capsys) == (2, "", f"error: {line}\n")


@pytest.mark.parametrize(
    "reason", ["", "   ", "x" * 161, "a\nb", "bell\x07", "esc\x1b[31m"], ids=repr
)
def test_a_bad_reason_is_refused_before_anything_is_sent(
    server: Hostile, capsys: pytest.CaptureFixture[str], reason: str
) -> None:
    server.reply = Reply(200, json.dumps(ANSWER).encode())
    seen = len(server.reply.seen)
    code, out, err = run(url(server), [*ARGS[:3], "--reason", reason], capsys)
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert len(server.reply.seen) == seen


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reply=hostile_answers(), output=st.sampled_from(["table", "json"]))
def test_any_answer_is_output_or_one_line(
    server: Hostile, capsys: pytest.CaptureFixture[str], reply: Reply, output: str
) -> None:
    server.reply = reply
    code, out, err = run(url(server), [*ARGS, "-o", output], capsys)
    assert "Traceback" not in out + err
    if code != 0:
        assert code in (2, 3, 4, 5), (code, err)
        assert out == "" and err.count("\n") == 1 and err.startswith("error: "), err
