"""A burn-in that fails on a fatal check (silent data corruption, a GPU gone) goes to repair at
once, with its evidence; a non-fatal failure is retried up to burn_in_max_attempts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from compute.testing import EPOCH, result
from health.policy import (
    Action,
    Decision,
    DrainOwner,
    Lifecycle,
    NodeHealth,
    NodeView,
    PolicyConfig,
    after,
    decide,
    observe,
)
from health.result import CheckResult
from health.runner import summarise

CFG = PolicyConfig(consecutive_failures=3, periodic_burn_in=None, burn_in_max_attempts=2)
VIEW = NodeView(
    "n1", "p", Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True
)
SDC = "GPU 4 answered 3f2a, the other GPUs 9c01 (cross_gpu)"


def at(minutes: int) -> datetime:
    return EPOCH + timedelta(minutes=minutes)


def burning() -> NodeHealth:
    return after(Decision("n1", Action.START_BURN_IN), NodeHealth(), CFG, at(0))


def report(when: int, *, sdc: bool = False, gemm: bool = False) -> list[CheckResult]:
    """A burn-in report as the node's runner makes it: its checks and their summary."""
    checks = [
        result("n1", "gpu_count", "pass", at=at(when), suite="burnin"),
        result("n1", "sdc", "fail" if sdc else "pass", fatal=sdc, at=at(when), suite="burnin",
               evidence=SDC),
        result("n1", "gemm_bf16", "fail" if gemm else "pass", at=at(when), suite="burnin",
               evidence="GPU 2 610 TFLOP/s (floor 640)"),
    ]  # fmt: skip
    return [*checks, summarise("n1", checks, at(when))]


def test_a_fatal_sdc_failure_goes_to_repair_on_the_first_failure() -> None:
    h = observe(burning(), report(5, sdc=True), CFG)
    assert h.burn_in_outcome is not None
    assert (h.burn_in_outcome.fatal, h.burn_in_outcome.fatal_checks) == (True, ("sdc",))
    assert h.burn_in_failures == 1 < CFG.burn_in_max_attempts
    d = decide(VIEW, h, CFG, at(6))
    assert d.action is Action.REPAIR and d.fatal and d.check == "sdc"
    assert "burn-in failed on a fatal check (sdc), no retry: sdc: GPU 4 answered" in d.reason
    assert after(d, h, CFG, at(6)).burn_in_outcome is None  # the episode is over


def test_a_fatal_failure_among_non_fatal_ones_is_still_fatal() -> None:
    h = observe(burning(), report(5, sdc=True, gemm=True), CFG)
    d = decide(VIEW, h, CFG, at(6))
    assert d.action is Action.REPAIR and "fatal check (sdc)" in d.reason


def test_a_non_fatal_gemm_failure_is_retried_as_before() -> None:
    h = observe(burning(), report(5, gemm=True), CFG)
    assert h.burn_in_outcome is not None and not h.burn_in_outcome.fatal
    d = decide(VIEW, h, CFG, at(6))
    assert d.action is Action.START_BURN_IN and "retry after failure: gemm_bf16" in d.reason
    h = observe(after(d, h, CFG, at(6)), report(9, gemm=True), CFG)
    d = decide(VIEW, h, CFG, at(10))
    assert d.action is Action.REPAIR and "burn-in failed 2x" in d.reason and not d.fatal


def test_a_fatal_failure_on_the_retry_of_a_non_fatal_one_goes_to_repair() -> None:
    h = observe(burning(), report(5, gemm=True), CFG)
    d = decide(VIEW, h, CFG, at(6))
    h = observe(after(d, h, CFG, at(6)), report(9, sdc=True), CFG)
    assert "fatal check (sdc)" in decide(VIEW, h, CFG, at(10)).reason


def test_an_older_summary_not_marked_fatal_is_judged_by_its_results() -> None:
    """A node running an older suite may post a summary without ``fatal``: the failing
    results reported with it say so."""
    *checks, summary = report(5, sdc=True)
    h = observe(burning(), [*checks, replace(summary, fatal=False)], CFG)
    assert h.burn_in_outcome is not None and h.burn_in_outcome.fatal
    assert decide(VIEW, h, CFG, at(6)).action is Action.REPAIR


def test_a_fatal_summary_alone_is_fatal_without_naming_a_check() -> None:
    *_, summary = report(5, sdc=True)
    h = observe(burning(), [summary], CFG)
    d = decide(VIEW, h, CFG, at(6))
    assert d.action is Action.REPAIR and "failed on a fatal check, no retry: sdc:" in d.reason
    assert d.check is None


def test_fatal_results_from_before_the_burn_in_do_not_make_it_fatal() -> None:
    old = result("n1", "sdc", fatal=True, at=at(-5), suite="burnin", evidence=SDC)
    *_, summary = report(5, gemm=True)
    h = observe(burning(), [old, summary], CFG)
    assert h.burn_in_outcome is not None and not h.burn_in_outcome.fatal


def test_a_fatal_fault_seen_during_a_remediation_burn_in_goes_to_repair() -> None:
    h = observe(burning(), [result("n1", "gpu_count", fatal=True, at=at(2), evidence="7/8")], CFG)
    d = decide(VIEW, h, CFG, at(3))
    assert d.action is Action.REPAIR and d.fatal and d.check == "gpu_count"
    assert "fatal check (gpu_count), no retry: gpu_count during burn-in: 7/8" in d.reason


def test_stored_health_reads_both_ways() -> None:
    h = observe(burning(), report(5, sdc=True), CFG)
    assert NodeHealth.from_json(h.to_json()) == h
    raw = h.to_json()
    # A row stored before outcomes knew fatal failures: read as not fatal.
    del raw["burn_in_outcome"]["fatal"], raw["burn_in_outcome"]["fatal_checks"]
    old = NodeHealth.from_json(raw)
    assert old.burn_in_outcome is not None
    assert (old.burn_in_outcome.fatal, old.burn_in_outcome.fatal_checks) == (False, ())
    assert decide(VIEW, old, CFG, at(6)).action is Action.START_BURN_IN
    # What older code reads of a new row (it indexes these three) is all there.
    assert {"passed", "evidence", "at"} <= set(h.to_json()["burn_in_outcome"])


# -- a property over any sequence of burn-in outcomes ------------------------------------------

event = st.one_of(
    st.tuples(st.just("report"), st.sampled_from(["pass", "gemm", "sdc", "sdc_old", "both"])),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("late")),  # past the burn-in timeout
    st.tuples(st.just("back")),  # an operator sends a repaired node through burn-in again
)


@settings(max_examples=300, deadline=None)
@given(attempts=st.integers(1, 4), events=st.lists(event, min_size=1, max_size=60))
def test_a_fatal_failure_is_never_followed_by_a_resume_without_a_repair(
    attempts: int, events: list[tuple[str, ...]]
) -> None:
    cfg = replace(CFG, burn_in_max_attempts=attempts)
    state, h, now = Lifecycle.BURN_IN, burning(), 0
    condemned = False  # a fatal failure seen since the last repair
    failed = 0  # non-fatal failed burn-ins since the last repair
    for e in events:
        now += 1
        if e[0] == "report" and state is Lifecycle.BURN_IN:
            counts = h.burn_in_started_at is not None and h.burn_in_outcome is None
            kind = e[1]
            results = report(
                now, sdc=kind in ("sdc", "sdc_old", "both"), gemm=kind in ("gemm", "both")
            )
            if kind == "sdc_old":
                results[-1] = replace(results[-1], fatal=False)
            h = observe(h, results, cfg)
            condemned |= counts and kind != "pass" and kind != "gemm"
            failed += counts and kind == "gemm"
        elif e[0] == "late":
            now += int(cfg.burn_in_timeout.total_seconds() // 60) + 1
        elif e[0] == "back" and state is Lifecycle.REPAIR:
            state, h = (
                Lifecycle.BURN_IN,
                after(Decision("n1", Action.START_BURN_IN), h, cfg, at(now)),
            )
        elif e[0] == "sweep" and state is Lifecycle.BURN_IN:
            d = decide(VIEW, h, cfg, at(now))
            assert not (condemned and d.action is not Action.REPAIR and d.acts), d
            assert d.action is not Action.RESUME or not condemned
            assert failed <= attempts
            h = after(d, h, cfg, at(now))
            if d.action is Action.REPAIR:
                state, condemned, failed = Lifecycle.REPAIR, False, 0
            elif d.action is Action.RESUME:
                state = Lifecycle.IN_SERVICE
                break
