"""The steps of a tranche's run (compute/services/acceptance.py): its nodes through burn-in,
then the pair test over those that passed.

Every state change of a node goes through the remediator, the one place each transition is
carried out: burn-in starts as ``nodes resume`` starts it (the START_BURN_IN decision: the
node is drained in its workload manager, then the pool's burn-in launcher runs the suite
there, as for every burn-in), and a node the pair test condemns goes to repair by the REPAIR
decision. What the policy then does with a burn-in (service when it passes, repair when it
fails again) is the policy's; this module only reads what came of it.

A node's progress: ``burn_in`` is waiting, started, passed, failed or not_tested (nothing
could be learnt of it: no evidence against it, nor for it), ``since`` when that began and
``note`` why.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from compute.domain import AUTOMATION, EventKind, Node
from compute.errors import ComputeError
from compute.services.fabric import PairTestOptions
from compute.store.acceptance import Tranche
from health.policy import Action, Decision, DrainOwner, Lifecycle, owned_reason

if TYPE_CHECKING:
    from compute.runtime import Runtime

WAITING, STARTED, PASSED, FAILED, NOT_TESTED = (
    "waiting",
    "started",
    "passed",
    "failed",
    "not_tested",
)
FINAL = frozenset({PASSED, FAILED, NOT_TESTED})
_OUTCOME_KINDS = (EventKind.BURN_IN_PASSED, EventKind.REPAIR, EventKind.RETIRE)


def nodes_of(progress: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = progress.get("nodes")
    return {str(k): dict(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _at(text: Any, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return default


def _mark(state: str, at: datetime, note: str = "") -> dict[str, Any]:
    return {"burn_in": state, "since": at.isoformat(), "note": note[:2000]}


def burn_in_step(rt: Runtime, t: Tranche, now: datetime) -> tuple[dict[str, Any], bool]:
    """Starts burn-in on the tranche's nodes not yet started and reads what came of those
    started; returns the progress and whether every node has its outcome."""
    nodes = nodes_of(t.progress)
    for name in t.nodes:
        mine = nodes.get(name, {})
        state = mine.get("burn_in", WAITING)
        if state in FINAL:
            continue
        node = rt.store.node(name)
        if node is None:
            nodes[name] = _mark(NOT_TESTED, now, "no longer known to computectl")
        elif state == STARTED:
            nodes[name] = _outcome(rt, node, mine, now)
        else:
            nodes[name] = _start(rt, t, node, mine, now)
    done = all(nodes[n].get("burn_in") in FINAL for n in t.nodes)
    return {**t.progress, "nodes": nodes}, done


def _deadline(rt: Runtime) -> float:
    """Seconds a node's burn-in may take, every attempt the policy makes included."""
    p = rt.policy
    return p.burn_in_timeout.total_seconds() * (p.burn_in_max_attempts + 1)


def _start(
    rt: Runtime, t: Tranche, node: Node, mine: dict[str, Any], now: datetime
) -> dict[str, Any]:
    waited = (now - _at(mine.get("since"), now)).total_seconds()
    if mine and waited > _deadline(rt):
        return _mark(NOT_TESTED, now, f"burn-in could not start: {mine.get('note', '')}")
    reason = f"acceptance of tranche {t.name}"
    match node.state:
        case Lifecycle.RETIRED:
            return _mark(FAILED, now, "retired")
        case Lifecycle.REPAIR:
            return _mark(FAILED, now, f"in repair: {node.drain_reason}")
        case Lifecycle.BURN_IN:
            # In burn-in already (a new node, a drain's): that burn-in is the one we wait for.
            since = node.health.burn_in_started_at or now
            return _mark(STARTED, min(since, now), "in burn-in already")
    if node.drain_owner is DrainOwner.EXTERNAL:
        return _mark(NOT_TESTED, now, f"drained by someone else: {node.drain_reason}")
    if node.jobs_running or node.state is Lifecycle.DRAINING:
        # Burn-in needs an empty node: work finishes first under the drain.
        if node.state is Lifecycle.IN_SERVICE:
            try:
                # As an operator's drain (the tranche's): not a fault of the node, so job
                # impact and lemons do not count it.
                rt.nodes.drain(node.name, reason, f"acceptance:{t.name}")
            except ComputeError as exc:
                return {**_mark(WAITING, now, f"drain failed: {exc}"), **_since(mine)}
        return {**_mark(WAITING, now, "draining: work on it finishes first"), **_since(mine)}
    decision = Decision(node.name, Action.START_BURN_IN, owned_reason("burn-in", reason))
    try:
        rt.remediator.apply(node, decision, actor=AUTOMATION)
    except ComputeError as exc:
        return {**_mark(WAITING, now, f"burn-in start failed: {exc}"), **_since(mine)}
    return _mark(STARTED, now, "burn-in started")


def _since(mine: dict[str, Any]) -> dict[str, Any]:
    """Keeps when the node began waiting, so its deadline counts from then."""
    return {"since": mine["since"]} if "since" in mine else {}


def _outcome(rt: Runtime, node: Node, mine: dict[str, Any], now: datetime) -> dict[str, Any]:
    since = _at(mine.get("since"), now)
    seen = rt.store.events(node=node.name, kinds=list(_OUTCOME_KINDS), since=since, limit=20)
    kinds = {e.kind: e for e in seen}
    if EventKind.BURN_IN_PASSED in kinds:
        return _mark(PASSED, now, "burn-in passed")
    for kind in (EventKind.REPAIR, EventKind.RETIRE):
        if kind in kinds:
            return _mark(FAILED, now, kinds[kind].reason or kind)
    if node.state is Lifecycle.BURN_IN and node.health.burn_in_stalled:
        return _mark(NOT_TESTED, now, f"burn-in did not report: {node.drain_reason}")
    if node.state is Lifecycle.IN_SERVICE:
        return _mark(NOT_TESTED, now, "back in service without a burn-in result")
    if node.drain_owner is DrainOwner.EXTERNAL:
        return _mark(NOT_TESTED, now, f"drained by someone else: {node.drain_reason}")
    if (now - since).total_seconds() > _deadline(rt):
        return _mark(NOT_TESTED, now, "no burn-in result before the deadline")
    return mine


def pair_test_step(rt: Runtime, t: Tranche, now: datetime) -> dict[str, Any]:
    """The pair test over the nodes that passed burn-in and are in service, per pool, with
    suspects re-paired; a node slow with every partner (confirmed) goes to repair."""
    nodes = nodes_of(t.progress)
    by_pool: dict[str, list[str]] = {}
    for name in t.nodes:
        node = rt.store.node(name)
        passed = nodes.get(name, {}).get("burn_in") == PASSED
        if passed and node is not None and node.state is Lifecycle.IN_SERVICE:
            by_pool.setdefault(node.pool, []).append(name)
    fabric = [_pool_test(rt, t, pool, names) for pool, names in sorted(by_pool.items())]
    return {**t.progress, "fabric": fabric, "pair_tested_at": now.isoformat()}


def _pool_test(rt: Runtime, t: Tranche, pool: str, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pool": pool,
        "nodes": names,
        "run": False,
        "reference_gbps": None,
        "suspect_nodes": {},
        "suspect_links": [],
        "inconclusive": [],
        "rechecks": [],
        "repaired": [],
        "repair_errors": {},
        "note": "",
    }
    if len(names) < 2:
        out["note"] = "fewer than two nodes passed burn-in here: no pair test"
        return out
    if pool not in rt.fabric.launchers:
        out["note"] = f"pool {pool} has no pair-test launcher: no pair test"
        return out
    try:
        run = rt.fabric.pair_test(pool, _options(rt, pool), AUTOMATION, names=names)
    except ComputeError as exc:
        # A test that could not run is no evidence against the nodes.
        out["note"] = f"the pair test could not run: {exc}"
        return out
    report = run.report
    out.update(
        run=True,
        reference_gbps=report.reference_gbps,
        suspect_nodes=dict(report.suspect_nodes),
        suspect_links=[list(link) for link in report.suspect_links],
        inconclusive=list(report.inconclusive),
        rechecks=[
            {"node": c.node, "partner": c.partner, "busbw_gbps": c.busbw_gbps,
             "outcome": c.outcome.value}
            for c in run.rechecks
        ],
    )  # fmt: skip
    out["repaired"], out["repair_errors"] = _to_repair(rt, t, report.suspect_nodes.items())
    return out


def _options(rt: Runtime, pool: str) -> PairTestOptions:
    """The [pair_test] settings and the pool's floor, as `nodes pair-test` takes them."""
    cfg = rt.settings.pair_test
    floor = next(
        (p.pair_test_floor_gbps for p in rt.settings.effective_pools if p.name == pool), None
    )
    return PairTestOptions(
        slow_ratio=cfg.slow_ratio,
        floor_gbps=floor,
        nbytes=cfg.bytes,
        timeout_seconds=cfg.timeout_seconds,
        probe_timeout_seconds=cfg.probe_timeout_seconds,
        port=cfg.port,
    )


def _to_repair(
    rt: Runtime, t: Tranche, suspects: Iterable[tuple[str, str]]
) -> tuple[list[str], dict[str, str]]:
    done: list[str] = []
    errors: dict[str, str] = {}
    for name, evidence in suspects:
        node = rt.store.node(name)
        if node is None:
            continue
        why = f"acceptance of tranche {t.name}: NCCL pair test: {evidence}"
        try:
            rt.remediator.apply(
                node, Decision(name, Action.REPAIR, owned_reason("repair", why)), AUTOMATION
            )
            done.append(name)
        except ComputeError as exc:
            errors[name] = str(exc)
    return done, errors
