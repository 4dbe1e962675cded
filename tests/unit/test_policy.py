"""Every rule of the remediation policy (its properties over arbitrary histories:
test_policy_histories.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from compute.testing import EPOCH, result
from health.policy import (
    Action,
    Decision,
    DrainMode,
    DrainOwner,
    Lifecycle,
    NodeHealth,
    NodeView,
    PolicyConfig,
    after,
    apply_budget,
    decide,
    drain_budget,
    is_owned,
    observe,
    owned_reason,
)

CFG = PolicyConfig(consecutive_failures=3, periodic_burn_in=None)


def view(name: str = "n1", state: Lifecycle = Lifecycle.IN_SERVICE, **kw: object) -> NodeView:
    return NodeView(name=name, pool="p", state=state, **kw)  # type: ignore[arg-type]


def at(minutes: int) -> object:
    return EPOCH + timedelta(minutes=minutes)


def test_fatal_failure_drains_at_once() -> None:
    h = observe(NodeHealth(), [result("n1", "gpu_count", fatal=True)], CFG)
    d = decide(view(), h, CFG, EPOCH)
    assert d.action is Action.DRAIN and d.fatal
    assert d.reason.startswith("computectl: gpu_count:")


def test_non_fatal_failure_needs_n_in_a_row() -> None:
    h = NodeHealth()
    for i in range(2):
        h = observe(h, [result("n1", "pcie", at=at(i))], CFG)
        assert decide(view(), h, CFG, EPOCH).action is Action.NONE
    h = observe(h, [result("n1", "pcie", at=at(3))], CFG)
    assert decide(view(), h, CFG, EPOCH).action is Action.DRAIN


def test_a_pass_resets_the_streak_and_forgets_a_non_fatal_finding() -> None:
    h = NodeHealth()
    for i in range(2):
        h = observe(h, [result("n1", "pcie", at=at(i))], CFG)
    h = observe(h, [result("n1", "pcie", "pass", at=at(2))], CFG)
    for i in range(2):
        h = observe(h, [result("n1", "pcie", at=at(3 + i))], CFG)
    assert decide(view(), h, CFG, EPOCH).action is Action.NONE
    h = observe(h, [result("n1", "pcie", at=at(6))], CFG)
    assert h.finding is not None
    h = observe(h, [result("n1", "pcie", "pass", at=at(7))], CFG)
    assert h.finding is None


def test_a_fatal_finding_stays_until_drained() -> None:
    h = observe(NodeHealth(), [result("n1", "xid", fatal=True, at=at(0))], CFG)
    h = observe(h, [result("n1", "xid", "pass", at=at(1))], CFG)
    assert decide(view(), h, CFG, EPOCH).action is Action.DRAIN
    h = after(decide(view(), h, CFG, EPOCH), h, CFG, EPOCH)
    assert h.finding is None


def test_warnings_never_drain() -> None:
    h = NodeHealth()
    for i in range(10):
        h = observe(h, [result("n1", "temperature", "warn", at=at(i))], CFG)
    assert decide(view(), h, CFG, EPOCH).action is Action.NONE


def test_down_checks_take_the_node_down_now() -> None:
    cfg = PolicyConfig(down_checks=frozenset({"gpu_count"}))
    h = observe(NodeHealth(), [result("n1", "gpu_count", fatal=True)], cfg)
    assert decide(view(), h, cfg, EPOCH).mode is DrainMode.DOWN
    h = observe(NodeHealth(), [result("n1", "xid", fatal=True)], cfg)
    assert decide(view(), h, cfg, EPOCH).mode is DrainMode.DRAIN


def test_draining_node_becomes_drained_when_jobs_end() -> None:
    v = view(
        state=Lifecycle.DRAINING,
        drain_owner=DrainOwner.COMPUTECTL,
        automation_drain=True,
        has_jobs=True,
    )
    assert decide(v, NodeHealth(), CFG, EPOCH).action is Action.NONE
    v = view(state=Lifecycle.DRAINING, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    assert decide(v, NodeHealth(), CFG, EPOCH).action is Action.MARK_DRAINED


def test_drained_node_goes_to_burn_in_before_service() -> None:
    v = view(state=Lifecycle.DRAINED, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    assert decide(v, NodeHealth(), CFG, EPOCH).action is Action.START_BURN_IN


def test_an_operator_drain_stays_until_the_operator_resumes() -> None:
    v = view(state=Lifecycle.DRAINED, drain_owner=DrainOwner.COMPUTECTL, automation_drain=False)
    assert decide(v, NodeHealth(), CFG, EPOCH).action is Action.NONE


def _burning(h: NodeHealth) -> tuple[NodeView, NodeHealth]:
    v = view(state=Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    h = after(Decision("n1", Action.START_BURN_IN), h, CFG, at(0))  # type: ignore[arg-type]
    return v, h


def test_burn_in_pass_resumes() -> None:
    v, h = _burning(NodeHealth())
    assert decide(v, h, CFG, at(1)).action is Action.NONE  # still running
    h = observe(h, [result("n1", "burnin", "pass", at=at(5), suite="burnin")], CFG)
    assert decide(v, h, CFG, at(6)).action is Action.RESUME


def test_burn_in_failing_twice_goes_to_repair() -> None:
    v, h = _burning(NodeHealth())
    h = observe(h, [result("n1", "burnin", "fail", at=at(5), suite="burnin")], CFG)
    d = decide(v, h, CFG, at(6))
    assert d.action is Action.START_BURN_IN  # one retry
    h = after(d, h, CFG, at(6))  # type: ignore[arg-type]
    h = observe(h, [result("n1", "burnin", "fail", at=at(9), suite="burnin")], CFG)
    d = decide(v, h, CFG, at(10))
    assert d.action is Action.REPAIR
    assert "burn-in failed 2x" in d.reason


def test_burn_in_results_from_before_the_run_do_not_count() -> None:
    v, h = _burning(NodeHealth())
    h = observe(h, [result("n1", "burnin", "pass", at=at(-5), suite="burnin")], CFG)
    assert decide(v, h, CFG, at(1)).action is Action.NONE


def test_a_burn_in_that_never_reports_is_no_evidence() -> None:
    """Past the timeout a burn-in with no result is retried, never counted as a failure;
    when the retries are spent the node waits (drained) for results or an operator."""
    v, h = _burning(NodeHealth())
    late = at(0) + CFG.burn_in_timeout + timedelta(minutes=1)  # type: ignore[operator]
    d = decide(v, h, CFG, late)
    assert d.action is Action.START_BURN_IN and "retry" in d.reason
    h = after(d, h, CFG, late)
    assert h.burn_in_failures == 0 and h.burn_in_missed == 1
    later = late + CFG.burn_in_timeout + timedelta(minutes=1)
    d = decide(v, h, CFG, later)
    assert d.action is Action.BURN_IN_STALLED
    h = after(d, h, CFG, later)
    assert h.burn_in_stalled and h.burn_in_failures == 0
    assert decide(v, h, CFG, later + timedelta(hours=9)).action is Action.NONE
    # Results posted later still decide.
    h = observe(
        h, [result("n1", "burnin", "pass", at=later + timedelta(hours=10), suite="burnin")], CFG
    )
    assert decide(v, h, CFG, later + timedelta(hours=11)).action is Action.RESUME


def test_without_a_launcher_no_burn_in_is_retried_and_none_is_started_voluntarily() -> None:
    cfg = PolicyConfig(periodic_burn_in=timedelta(days=7))
    assert decide(view(can_burn_in=False), NodeHealth(), cfg, EPOCH).action is Action.NONE
    v, h = _burning(NodeHealth())
    v = view(
        state=Lifecycle.BURN_IN,
        drain_owner=DrainOwner.COMPUTECTL,
        automation_drain=True,
        can_burn_in=False,
    )
    late = at(0) + CFG.burn_in_timeout + timedelta(minutes=1)  # type: ignore[operator]
    d = decide(v, h, CFG, late)
    assert d.action is Action.BURN_IN_STALLED and "no burn-in launcher" in d.reason


def test_a_periodic_burn_in_that_never_reports_returns_the_node() -> None:
    cfg = PolicyConfig(periodic_burn_in=timedelta(days=7))
    h = after(Decision("n1", Action.CHECKUP), NodeHealth(), cfg, at(0))  # type: ignore[arg-type]
    assert h.burn_in_voluntary
    v = view(state=Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    late = at(0) + cfg.burn_in_timeout + timedelta(minutes=1)  # type: ignore[operator]
    d = decide(v, h, cfg, late)
    assert d.action is Action.RESUME and "did not run" in d.reason
    h = after(d, h, cfg, late)
    assert h.burn_in_passed_at is None and h.checkup_missed_at == late
    # Not tried again at once: a whole period later.
    assert decide(view(), h, cfg, late + timedelta(days=1)).action is Action.NONE
    assert decide(view(), h, cfg, late + timedelta(days=8)).action is Action.CHECKUP


def test_a_fault_seen_during_a_periodic_burn_in_is_drained_for_not_resumed() -> None:
    cfg = PolicyConfig(periodic_burn_in=timedelta(days=7))
    h = after(Decision("n1", Action.CHECKUP), NodeHealth(), cfg, at(0))  # type: ignore[arg-type]
    h = observe(h, [result("n1", "xid", fatal=True, at=at(3), evidence="XID 79")], cfg)
    v = view(state=Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    late = at(0) + cfg.burn_in_timeout + timedelta(minutes=1)  # type: ignore[operator]
    for when in (at(4), late):
        d = decide(v, h, cfg, when)
        assert d.action is Action.DRAIN and d.fatal and "XID 79" in d.reason
    # Even a passing burn-in does not outvote it.
    h = observe(h, [result("n1", "burnin", "pass", at=at(5), suite="burnin")], cfg)
    assert decide(v, h, cfg, at(6)).action is Action.DRAIN


def test_a_fault_seen_during_a_remediation_burn_in_counts_as_a_failed_attempt() -> None:
    """A non-fatal one (a fatal one goes to repair at once: test_policy_fatal_burn_in.py)."""
    v, h = _burning(NodeHealth())
    pcie = [result("n1", "pcie", at=at(m), evidence="x8") for m in (1, 2, 2)]
    h = observe(h, pcie, CFG)
    h = observe(h, [result("n1", "burnin", "pass", at=at(3), suite="burnin")], CFG)
    d = decide(v, h, CFG, at(4))
    assert d.action is Action.START_BURN_IN and "pcie during burn-in" in d.reason
    h = after(d, h, CFG, at(4))
    assert h.burn_in_failures == 1 and h.finding is None
    h = observe(h, [result("n1", "pcie", at=at(m), evidence="x8") for m in (5, 6, 6)], CFG)
    assert decide(v, h, CFG, at(7)).action is Action.REPAIR


def test_passing_a_periodic_burn_in_opens_no_repeat_failure_window() -> None:
    cfg = PolicyConfig(periodic_burn_in=timedelta(days=7))
    h = after(Decision("n1", Action.CHECKUP), NodeHealth(), cfg, at(0))  # type: ignore[arg-type]
    h = observe(h, [result("n1", "burnin", "pass", at=at(3), suite="burnin")], cfg)
    v = view(state=Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    d = decide(v, h, cfg, at(4))
    assert d.action is Action.RESUME
    h = after(d, h, cfg, at(4))
    assert h.last_resumed_at is None
    h = observe(h, [result("n1", "gpu_count", fatal=True, at=at(60))], cfg)
    h = after(decide(view(), h, cfg, at(61)), h, cfg, at(61))  # type: ignore[arg-type]
    assert not h.repair_next  # a fault now goes through burn-in, not straight to repair


def test_repair_reason_names_the_window_plainly() -> None:
    h = NodeHealth(repair_next=True)
    v = view(state=Lifecycle.DRAINED, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    assert "within 7 days of returning" in decide(v, h, CFG, EPOCH).reason


def test_a_drain_that_left_work_behind_is_retried() -> None:
    v = view(
        state=Lifecycle.DRAINING,
        drain_owner=DrainOwner.COMPUTECTL,
        automation_drain=True,
        has_jobs=True,
    )
    blocked = NodeHealth(drain_blocked=("team/pod-0: disruption budget",))
    assert decide(v, blocked, CFG, EPOCH).action is Action.CONTINUE_DRAIN
    assert decide(v, NodeHealth(), CFG, EPOCH).action is Action.NONE


def test_failing_again_soon_after_resume_goes_to_repair() -> None:
    h = after(Decision("n1", Action.RESUME), NodeHealth(), CFG, at(0))  # type: ignore[arg-type]
    h = observe(h, [result("n1", "gpu_count", fatal=True, at=at(60))], CFG)
    d = decide(view(), h, CFG, at(61))
    h = after(d, h, CFG, at(61))  # type: ignore[arg-type]
    assert h.repair_next
    v = view(state=Lifecycle.DRAINED, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
    assert decide(v, h, CFG, at(62)).action is Action.REPAIR


def test_failing_long_after_resume_goes_to_burn_in() -> None:
    h = after(Decision("n1", Action.RESUME), NodeHealth(), CFG, at(0))  # type: ignore[arg-type]
    later = at(0) + CFG.repeat_failure_window + timedelta(hours=1)  # type: ignore[operator]
    h = observe(h, [result("n1", "gpu_count", fatal=True, at=later)], CFG)
    h = after(decide(view(), h, CFG, later), h, CFG, later)
    assert not h.repair_next


@pytest.mark.parametrize("state", list(Lifecycle))
def test_a_drain_someone_else_made_is_never_touched(state: Lifecycle) -> None:
    h = observe(NodeHealth(), [result("n1", "gpu_count", fatal=True)], CFG)
    h = h.evolve(burn_in_started_at=EPOCH)
    v = view(state=state, drain_owner=DrainOwner.EXTERNAL)
    assert decide(v, h, CFG, at(500)).action is Action.NONE


def test_budget_defers_drains_beyond_the_share_fatal_first() -> None:
    cfg = PolicyConfig(drain_budget_fraction=0.25, drain_budget_min_nodes=0)
    views = {"p": [view(f"n{i}") for i in range(8)]}
    decisions = [
        Decision("n1", Action.DRAIN, "x"),
        Decision("n5", Action.DRAIN, "y", fatal=True),
        Decision("n3", Action.DRAIN, "z"),
    ]
    out = {d.node: d.action for d in apply_budget(decisions, views, cfg)}
    assert out == {"n5": Action.DRAIN, "n1": Action.DRAIN, "n3": Action.DEFER}


def test_budget_counts_nodes_already_out_for_remediation() -> None:
    cfg = PolicyConfig(drain_budget_fraction=0.25, drain_budget_min_nodes=0)
    views = {
        "p": [
            view("n0", Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True)
        ]
        + [view(f"n{i}") for i in range(1, 8)]
    }
    out = apply_budget([Decision("n1", Action.DRAIN), Decision("n2", Action.DRAIN)], views, cfg)
    assert [d.action for d in out] == [Action.DRAIN, Action.DEFER]
    assert "drain budget of pool p exhausted (2/2" in out[1].reason


def test_budget_floor_and_minimum() -> None:
    assert drain_budget(8, PolicyConfig(drain_budget_fraction=0.1, drain_budget_min_nodes=1)) == 1
    assert drain_budget(8, PolicyConfig(drain_budget_fraction=0.1, drain_budget_min_nodes=0)) == 0
    assert drain_budget(30, PolicyConfig(drain_budget_fraction=0.1)) == 3
    assert drain_budget(2, PolicyConfig(drain_budget_fraction=0.5, drain_budget_min_nodes=5)) == 2


def test_an_idle_node_gets_a_periodic_burn_in_when_its_last_is_old() -> None:
    cfg = PolicyConfig(periodic_burn_in=timedelta(days=7))
    assert decide(view(), NodeHealth(), cfg, EPOCH).action is Action.CHECKUP
    assert decide(view(has_jobs=True), NodeHealth(), cfg, EPOCH).action is Action.NONE
    recent = NodeHealth(burn_in_passed_at=EPOCH - timedelta(days=2))
    assert decide(view(), recent, cfg, EPOCH).action is Action.NONE
    old = NodeHealth(burn_in_passed_at=EPOCH - timedelta(days=8))
    d = decide(view(), old, cfg, EPOCH)
    assert d.action is Action.CHECKUP and "last passed" in d.reason


def test_a_passed_burn_in_is_remembered() -> None:
    h = after(Decision("n1", Action.CHECKUP), NodeHealth(), CFG, at(0))  # type: ignore[arg-type]
    h = observe(h, [result("n1", "burnin", "pass", at=at(3), suite="burnin")], CFG)
    assert h.burn_in_passed_at == at(3)


def test_periodic_burn_ins_yield_to_drains_and_are_few_per_sweep() -> None:
    cfg = PolicyConfig(
        drain_budget_fraction=0.25, drain_budget_min_nodes=0, periodic_burn_in_per_sweep=1
    )
    views = {"p": [view(f"n{i}") for i in range(8)]}  # budget 2
    decisions = [
        Decision("n0", Action.CHECKUP),
        Decision("n1", Action.CHECKUP),
        Decision("n2", Action.DRAIN),
        Decision("n3", Action.DRAIN),
    ]
    out = {d.node: d.action for d in apply_budget(decisions, views, cfg)}
    assert out == {"n0": Action.NONE, "n1": Action.NONE, "n2": Action.DRAIN, "n3": Action.DRAIN}
    out = {d.node: d.action for d in apply_budget(decisions[:2], views, cfg)}
    assert out == {"n0": Action.CHECKUP, "n1": Action.NONE}


def test_a_fatal_drain_never_waits_behind_a_periodic_burn_in() -> None:
    cfg = PolicyConfig(drain_budget_fraction=0.1, drain_budget_min_nodes=1)  # budget 1 of 12
    out_for_checkup = view(
        "n0",
        Lifecycle.BURN_IN,
        drain_owner=DrainOwner.COMPUTECTL,
        automation_drain=True,
        voluntary=True,
    )
    views = {"p": [out_for_checkup] + [view(f"n{i}") for i in range(1, 12)]}
    decisions = [Decision("n5", Action.DRAIN, "xid 79", fatal=True), Decision("n6", Action.CHECKUP)]
    out = {d.node: d.action for d in apply_budget(decisions, views, cfg)}
    assert out == {"n5": Action.DRAIN, "n6": Action.NONE}
    # A node out for a fault does use the budget.
    views["p"][0] = view(
        "n0", Lifecycle.BURN_IN, drain_owner=DrainOwner.COMPUTECTL, automation_drain=True
    )
    out = {d.node: d.action for d in apply_budget(decisions, views, cfg)}
    assert out == {"n5": Action.DEFER, "n6": Action.NONE}


def test_no_periodic_burn_in_while_any_node_is_out_beyond_the_budget() -> None:
    cfg = PolicyConfig(drain_budget_fraction=0.2, drain_budget_min_nodes=0)
    views = {
        "p": [
            view("n0", Lifecycle.DRAINED, drain_owner=DrainOwner.EXTERNAL),
            view("n1", Lifecycle.REPAIR, drain_owner=DrainOwner.COMPUTECTL),
        ]
        + [view(f"n{i}") for i in range(2, 10)]
    }  # budget 2, and two nodes are out (neither by automation's drain)
    out = apply_budget([Decision("n5", Action.CHECKUP)], views, cfg)
    assert out[0].action is Action.NONE


def test_no_periodic_burn_in_while_a_fault_drain_waits() -> None:
    cfg = PolicyConfig(drain_budget_fraction=0.25, drain_budget_min_nodes=0)
    views = {"p": [view(f"n{i}") for i in range(8)]}  # budget 2
    decisions = [Decision(f"n{i}", Action.DRAIN, "pcie") for i in range(3)]
    decisions.append(Decision("n7", Action.CHECKUP))
    out = {d.node: d.action for d in apply_budget(decisions, views, cfg)}
    assert out["n2"] is Action.DEFER and out["n7"] is Action.NONE


def test_owned_reasons() -> None:
    r = owned_reason("xid", "XID 79   on\nGPU 3")
    assert r == "computectl: xid: XID 79 on GPU 3" and is_owned(r)
    assert not is_owned("admin: replacing PSU") and not is_owned("") and not is_owned(None)
    assert len(owned_reason("x", "y" * 500)) == 200
