"""Per-node rules: what the results mean, what to do next, and the memory after doing it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from health.policy.model import (
    Action,
    BurnInOutcome,
    Decision,
    DrainMode,
    DrainOwner,
    Finding,
    Lifecycle,
    NodeHealth,
    NodeView,
    PolicyConfig,
)
from health.policy.reasons import owned_reason
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite

# Checks that judge growth since their last run need their last values kept.
REMEMBER_VALUES = frozenset({"nvlink", "versions", "version_drift"})


def observe(health: NodeHealth, results: Iterable[CheckResult], cfg: PolicyConfig) -> NodeHealth:
    """Fold new results (in the order they were taken) into the node's memory.

    A fatal failure becomes a finding at once and stays until the node is
    drained: the event it reports is not undone by a quiet check afterwards.
    A non-fatal failure becomes a finding after ``consecutive_failures`` in a
    row, and is forgotten when its check passes again.
    """
    streaks = dict(health.streaks)
    values = dict(health.last_values)
    finding = health.finding
    started = health.burn_in_started_at
    outcome = health.burn_in_outcome
    failures = health.burn_in_failures
    unwell = set(health.unwell)
    passed_at = health.burn_in_passed_at
    ordered = sorted(results, key=lambda r: r.at)
    for r in ordered:
        if r.check == BURNIN_SUMMARY:
            if started is not None and r.at >= started and outcome is None:
                outcome = _outcome(r, ordered, started)
                if not outcome.passed:
                    failures += 1
                else:
                    passed_at = r.at
            continue
        if r.suite is Suite.BURNIN:
            continue  # judged through the burn-in summary
        if r.check in REMEMBER_VALUES:
            values[r.check] = r.values
        if r.status is Status.PASS:
            unwell.discard(r.check)
        else:
            unwell.add(r.check)
        if r.status is Status.FAIL:
            streaks[r.check] = streaks.get(r.check, 0) + 1
            if r.fatal or streaks[r.check] >= cfg.consecutive_failures:
                new = Finding(
                    check=r.check, evidence=r.evidence, fatal=r.fatal, at=r.at, gpus=r.gpus
                )
                if (
                    finding is None
                    or (new.fatal and not finding.fatal)
                    or (new.fatal == finding.fatal and new.check == finding.check)
                ):
                    finding = new
        else:
            # Gone, not zero: a streak of zero is no streak, and the stored memory keeps none
            # (NodeHealth.to_json), so the node as folded is the node as stored.
            streaks.pop(r.check, None)
            if finding is not None and finding.check == r.check and not finding.fatal:
                finding = None
    return health.evolve(
        streaks=streaks,
        last_values=values,
        finding=finding,
        burn_in_outcome=outcome,
        burn_in_failures=failures,
        unwell=frozenset(unwell),
        burn_in_passed_at=passed_at,
    )


def _outcome(
    summary: CheckResult, results: Iterable[CheckResult], started: datetime
) -> BurnInOutcome:
    """The burn-in's verdict from its summary and the results reported with it: fatal when
    the summary says so or any of the run's failures was (a node's older summary may not)."""
    if summary.status is Status.PASS:
        return BurnInOutcome(True, summary.evidence, summary.at)
    fatal = sorted(
        {
            r.check
            for r in results
            if r.suite is Suite.BURNIN
            and r.fatal
            and r.status is Status.FAIL
            and r.check != BURNIN_SUMMARY
            and r.at >= started
        }
    )
    return BurnInOutcome(
        False, summary.evidence, summary.at, summary.fatal or bool(fatal), tuple(fatal)
    )


def decide(view: NodeView, health: NodeHealth, cfg: PolicyConfig, now: datetime) -> Decision:
    """The next step for one node, before the pool's drain budget is applied."""
    owned = view.drain_owner is DrainOwner.COMPUTECTL
    match view.state:
        case Lifecycle.IN_SERVICE:
            f = health.finding
            if view.drain_owner is DrainOwner.EXTERNAL:
                return Decision(view.name, Action.NONE)
            if f is None:
                return _checkup_due(view, health, cfg, now)
            return _fault_drain(view.name, f, cfg)
        case Lifecycle.DRAINING if owned and not view.has_jobs:
            return Decision(view.name, Action.MARK_DRAINED)
        case Lifecycle.DRAINING if owned and health.drain_blocked:
            # Work a disruption budget protected: the budget may allow it now.
            return Decision(view.name, Action.CONTINUE_DRAIN, "retry: work left running")
        case Lifecycle.DRAINED if owned and view.automation_drain:
            if health.repair_next:
                why = f"failed again within {_span(cfg.repeat_failure_window)} of returning"
                return Decision(view.name, Action.REPAIR, owned_reason("repair", why))
            return Decision(view.name, Action.START_BURN_IN, owned_reason("burn-in", "after drain"))
        case Lifecycle.BURN_IN if owned:
            return _burn_in_step(view, health, cfg, now)
    return Decision(view.name, Action.NONE)


def drain_mode(check: str, fatal: bool, down_checks: Collection[str]) -> DrainMode:
    """A fatal failure of a check in ``down_checks`` ends running work; others let it finish.
    The one rule for the sweep and for the node check run by Slurm (HealthCheckProgram)."""
    return DrainMode.DOWN if fatal and check in down_checks else DrainMode.DRAIN


def _fault_drain(node: str, f: Finding, cfg: PolicyConfig) -> Decision:
    mode = drain_mode(f.check, f.fatal, cfg.down_checks)
    reason = owned_reason(f.check, f.evidence)
    return Decision(node, Action.DRAIN, reason, mode=mode, fatal=f.fatal, check=f.check)


def _span(t: timedelta) -> str:
    """A policy window in an operator's words: "7 days", "36 h", "90 min"."""
    minutes = round(t.total_seconds() / 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _checkup_due(view: NodeView, health: NodeHealth, cfg: PolicyConfig, now: datetime) -> Decision:
    """An idle node whose last passed burn-in is old gets one: silent faults (a slow GPU, a
    weak link) show only under load, and only burn-in puts them under load on purpose."""
    period = cfg.periodic_burn_in
    # Without a launcher nothing would run the burn-in: the node would only sit out of
    # service until the timeout, and a burn-in that never ran says nothing about it.
    if period is None or view.has_jobs or not view.can_burn_in:
        return Decision(view.name, Action.NONE)
    last = health.burn_in_passed_at
    if last is not None and now - last < period:
        return Decision(view.name, Action.NONE)
    missed = health.checkup_missed_at
    if missed is not None and now - missed < period:
        return Decision(view.name, Action.NONE)
    why = "periodic, never passed one" if last is None else f"periodic, last passed {last:%Y-%m-%d}"
    return Decision(view.name, Action.CHECKUP, owned_reason("burn-in", why))


def _burn_in_step(view: NodeView, health: NodeHealth, cfg: PolicyConfig, now: datetime) -> Decision:
    f = health.finding
    if f is not None:
        # A fault seen while the node is out for burn-in is evidence like a failed burn-in.
        if health.burn_in_voluntary and not health.burn_in_failures:
            return _fault_drain(view.name, f, cfg)  # out only voluntarily: now for a fault
        failures = health.burn_in_failures + 1
        why = f"{f.check} during burn-in: {f.evidence}"
        if f.fatal:
            return _fatal_repair(view.name, (f.check,), why)
        if failures >= cfg.burn_in_max_attempts:
            return Decision(
                view.name,
                Action.REPAIR,
                owned_reason("repair", f"burn-in failed {failures}x: {why}"),
            )
        return Decision(view.name, Action.START_BURN_IN, owned_reason("burn-in", f"retry: {why}"))
    started = health.burn_in_started_at
    if started is None:
        return Decision(view.name, Action.START_BURN_IN, owned_reason("burn-in", "starting"))
    outcome = health.burn_in_outcome
    if outcome is None:
        return _no_result(view, health, cfg, now, started)
    if outcome.passed:
        return Decision(view.name, Action.RESUME, "burn-in passed")
    failures = health.burn_in_failures
    why = outcome.evidence
    if outcome.fatal:
        return _fatal_repair(view.name, outcome.fatal_checks, why)
    if failures >= cfg.burn_in_max_attempts:
        return Decision(
            view.name, Action.REPAIR, owned_reason("repair", f"burn-in failed {failures}x: {why}")
        )
    return Decision(
        view.name, Action.START_BURN_IN, owned_reason("burn-in", f"retry after failure: {why}")
    )


def _fatal_repair(node: str, checks: tuple[str, ...], why: str) -> Decision:
    """A fatal failure in burn-in goes to repair at once: a second run that passes would not
    clear it (silent data corruption comes and goes; a pass proves nothing once seen)."""
    which = f" ({', '.join(checks)})" if checks else ""
    reason = owned_reason("repair", f"burn-in failed on a fatal check{which}, no retry: {why}")
    return Decision(node, Action.REPAIR, reason, fatal=True, check=checks[0] if checks else None)


def _no_result(
    view: NodeView, health: NodeHealth, cfg: PolicyConfig, now: datetime, started: datetime
) -> Decision:
    """A burn-in with no result yet. Past the timeout it did not run (or could not report):
    that is no evidence against the node, so it never counts as a failure."""
    if now - started < cfg.burn_in_timeout:
        return Decision(view.name, Action.NONE)
    late = f"no burn-in result within {cfg.burn_in_timeout}"
    if _healthy_checkup(health):
        # The node was healthy when the periodic burn-in began, and nothing since said
        # otherwise: it goes back as it was.
        return Decision(view.name, Action.RESUME, f"periodic burn-in did not run ({late})")
    if view.can_burn_in and health.burn_in_missed + 1 < cfg.burn_in_max_attempts:
        return Decision(view.name, Action.START_BURN_IN, owned_reason("burn-in", f"retry: {late}"))
    if health.burn_in_stalled:
        return Decision(view.name, Action.NONE)
    how = (
        "the launcher's jobs did not report"
        if view.can_burn_in
        else "this pool has no burn-in launcher: run `computectl node check --suite burnin "
        "--report URL` on the node, or resume it"
    )
    return Decision(
        view.name, Action.BURN_IN_STALLED, owned_reason("burn-in", f"waiting: {late}; {how}")
    )


def _healthy_checkup(health: NodeHealth) -> bool:
    """Out for a periodic burn-in, and nothing has spoken against the node since."""
    return health.burn_in_voluntary and not health.burn_in_failures and health.finding is None


def after(decision: Decision, health: NodeHealth, cfg: PolicyConfig, now: datetime) -> NodeHealth:
    """The node's memory once ``decision`` has been carried out."""
    match decision.action:
        case Action.DRAIN:
            recent = (
                health.last_resumed_at is not None
                and now - health.last_resumed_at < cfg.repeat_failure_window
            )
            return _episode_over(health, repair_next=recent)
        case Action.START_BURN_IN | Action.CHECKUP:
            timed_out = health.burn_in_started_at is not None and health.burn_in_outcome is None
            voluntary = decision.action is Action.CHECKUP or (
                health.burn_in_voluntary and health.burn_in_started_at is not None
            )
            # A fault seen during the last attempt counts as that attempt failing.
            faulted = health.finding is not None and decision.action is Action.START_BURN_IN
            return health.evolve(
                burn_in_started_at=now,
                burn_in_outcome=None,
                burn_in_missed=health.burn_in_missed + 1 if timed_out and not faulted else 0,
                burn_in_failures=health.burn_in_failures + (1 if faulted else 0),
                finding=None if faulted else health.finding,
                streaks={} if faulted else health.streaks,
                burn_in_voluntary=voluntary,
                burn_in_stalled=False,
            )
        case Action.BURN_IN_STALLED:
            return health.evolve(burn_in_stalled=True)
        case Action.RESUME:
            checkup = _healthy_checkup(health) and health.burn_in_started_at is not None
            missed_checkup = checkup and health.burn_in_outcome is None
            return _episode_over(
                health,
                repair_next=False,
                # Only a return from remediation opens the repeat-failure window: a healthy
                # node back from a periodic burn-in was never out for a fault.
                last_resumed_at=health.last_resumed_at if checkup else now,
                checkup_missed_at=now if missed_checkup else health.checkup_missed_at,
            )
        case Action.REPAIR:
            return _episode_over(health, repair_next=False)
    return health


def _episode_over(health: NodeHealth, **changes: Any) -> NodeHealth:
    """A drain, a return to service or repair ends what the node's memory held of the last
    fault and burn-in: it is judged afresh from here."""
    return health.evolve(
        finding=None,
        streaks={},
        burn_in_failures=0,
        burn_in_started_at=None,
        burn_in_outcome=None,
        **_FRESH_BURN_IN,
        **changes,
    )


# What a node's memory of a burn-in under way goes back to when that burn-in is over.
_FRESH_BURN_IN: Mapping[str, Any] = MappingProxyType(
    {"burn_in_voluntary": False, "burn_in_missed": 0, "burn_in_stalled": False, "drain_blocked": ()}
)
