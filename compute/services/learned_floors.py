"""Learned burn-in floors in the control plane: learned after a sweep (at most once per
[floors] refresh_seconds) from the stored burn-in results, kept in the store, applied to the
burn-in figures posted at ingest, and served to the nodes (``FloorJudge.for_node``).

Both judges, the node's own check and ingest, apply one rule (health/floor_judging.py) to
the same table: a node that got the floors fails a slow GPU itself (its exit code, Slurm's
health check); ingest judges again, which covers every other way figures come (a Slurm or
Kubernetes burn-in job, the simulated site, an older agent, a node that could not ask).
The node's own verdict against the fixed floor and its node median stands; the learned
floor can only fail more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from compute.clock import Clock
from compute.config_floors import FloorsSettings
from compute.store import Store
from compute.store import floors as kept
from health import floor_judging as judging
from health.floor_judging import CHECKS, Key, figures_of, learned_index, result_stack
from health.floor_learning import MAX_RAISE_LIMIT, LearnedFloor, LearningRule, learn
from health.floors import Floors, load_floors
from health.result import CheckResult, Status

if TYPE_CHECKING:
    from compute.runtime import Runtime


HISTORY_DAYS = 40
# A process re-reads the stored table at most this often (the table changes hourly).
READ_EVERY = timedelta(seconds=60)


def passing_figures(check: str, status: str, values: Mapping[str, Any]) -> dict[int, float]:
    """The figures of a stored result that count as passing: the node judged them against
    its floors and passed them; where only the learned floor failed the result, those at or
    above the floor it was judged with."""
    if values.get("floors_judged") is not True:
        return {}
    figures = figures_of(check, values)
    if status == Status.PASS.value:
        return figures
    learned = values.get("learned_floor")
    if values.get("node_verdict") == Status.PASS.value and isinstance(learned, int | float):
        return {g: f for g, f in figures.items() if f >= learned}
    return {}


def compute_table(
    rows: Iterable[kept.BurnInFigures],
    fixed: Mapping[str, Floors],
    rule: LearningRule,
) -> dict[Key, LearnedFloor]:
    samples: dict[Key, list[float]] = {}
    nodes: dict[Key, set[str]] = {}
    for r in rows:
        if r.check not in CHECKS or r.gpu_model not in fixed:
            continue
        figures = passing_figures(r.check, r.status, r.values)
        if not figures:
            continue
        key = (r.gpu_model, result_stack(r.values), r.check)
        samples.setdefault(key, []).extend(figures.values())
        nodes.setdefault(key, set()).add(r.node)
    return {
        key: learn(
            figs, float(getattr(fixed[key[0]], CHECKS[key[2]].fixed_attr)), rule, len(nodes[key])
        )
        for key, figs in sorted(samples.items())
    }


def daily_medians(
    old: Mapping[str, Any], table: Mapping[Key, LearnedFloor], now: datetime
) -> dict[str, list[list[Any]]]:
    """Each key's daily medians: today's replaced by the one just learned, the oldest past
    HISTORY_DAYS dropped."""
    day = now.date().isoformat()
    first = (now - timedelta(days=HISTORY_DAYS)).date().isoformat()
    out: dict[str, list[list[Any]]] = {}
    for k, points in (old.get("history") or {}).items():
        kept_points = [p for p in points if isinstance(p, list) and len(p) == 2 and p[0] >= first]
        if kept_points:
            out[k] = kept_points
    for key, f in table.items():
        if f.median is None:
            continue
        name = "|".join(key)
        points = [p for p in out.get(name, []) if p[0] != day]
        out[name] = [*points, [day, round(f.median, 3)]]
    return out


def _row(key: Key, f: LearnedFloor) -> dict[str, Any]:
    model, stack, check = key
    return {
        "model": model,
        "stack": stack,
        "check": check,
        "unit": CHECKS[check].unit,
        "samples": f.samples,
        "nodes": f.nodes,
        "fixed_floor": f.fixed,
        "learned_floor": round(f.floor, 3),
        "learned": f.learned,
        "median": None if f.median is None else round(f.median, 3),
        "mad": None if f.mad is None else round(f.mad, 3),
        "reason": f.reason,
    }


def refresh(store: Store, settings: FloorsSettings, now: datetime, force: bool = False) -> bool:
    """Learn the floors again if the stored ones are older than the refresh interval (or
    ``force``); True where a new table was written."""
    old = kept.table(store) or {}
    read_at = old.get("computed_at")
    if not force and isinstance(read_at, str):
        try:
            if now - datetime.fromisoformat(read_at) < timedelta(seconds=settings.refresh_seconds):
                return False
        except ValueError:
            pass  # unreadable: learn again
    since = now - timedelta(days=settings.window_days)
    rows = kept.burn_in_figures(store, list(CHECKS), since, settings.max_results)
    table = compute_table(rows, load_floors(), settings.rule())
    value = {
        "computed_at": now.isoformat(),
        "since": since.isoformat(),
        "results_read": len(rows),
        "rule": {
            "k": settings.k,
            "min_margin": settings.min_margin,
            "max_raise": settings.max_raise,
            "min_samples": settings.min_samples,
            "min_nodes": settings.min_nodes,
        },
        "rows": [_row(k, f) for k, f in table.items()],
        "history": daily_medians(old, table, now),
    }
    return kept.replace_table(store, read_at if isinstance(read_at, str) else None, value)


def after_sweep(rt: Runtime) -> list[str]:
    """After a sweep, by the acting control plane: what could not be done, one line each."""
    settings: FloorsSettings = rt.settings.floors
    if not settings.learned:
        return []
    try:
        refresh(rt.store, settings, rt.clock.now())
    except (ValueError, TypeError, KeyError) as exc:  # a malformed stored table: said, not fatal
        return [f"learned floors: {exc}"]
    return []


# -- judging at ingest, and on the nodes ---------------------------------------------------


def stored_max_raise(value: Mapping[str, Any] | None) -> float | None:
    """The ceiling the stored table was learned under (None: not a sound one)."""
    stored = (value or {}).get("rule")
    cap = stored.get("max_raise") if isinstance(stored, Mapping) else None
    if isinstance(cap, int | float) and not isinstance(cap, bool) and 1 <= cap <= MAX_RAISE_LIMIT:
        return float(cap)
    return None


class FloorJudge:
    """What ingest judges burn-in figures with, and what nodes are told to judge theirs with:
    the stored table, read again at most every READ_EVERY by this process (not once per
    request)."""

    def __init__(self, store: Store, clock: Clock, enabled: bool = True) -> None:
        """``enabled`` False ([floors] learned = false): no learned floor judges, not even a
        table learned while it was on; the fixed floors alone."""
        self.store = store
        self.clock = clock
        self.enabled = enabled
        self._index: dict[Key, Mapping[str, Any]] = {}
        self._max_raise: float | None = None
        self._read_at: datetime | None = None

    def index(self) -> dict[Key, Mapping[str, Any]]:
        if not self.enabled:
            return {}
        now = self.clock.now()
        if self._read_at is None or not (self._read_at <= now < self._read_at + READ_EVERY):
            value = kept.table(self.store)
            self._index, self._max_raise = learned_index(value), stored_max_raise(value)
            self._read_at = now
        return self._index

    def forget(self) -> None:
        """Read the table again at the next judgement (after a refresh in this process)."""
        self._read_at = None

    @staticmethod
    def wanted(results: Sequence[CheckResult]) -> bool:
        return judging.wanted(results)

    def judge(self, model: str, results: Sequence[CheckResult]) -> list[CheckResult]:
        return judging.judge(model, results, self.index())

    def for_node(self, model: str, stack: str) -> dict[str, Any]:
        """The learned floors a node of ``model`` on ``stack`` judges its burn-in with: the
        rows ingest would judge it with, no others."""
        index = self.index()
        rows = [row for (m, s, _), row in sorted(index.items()) if (m, s) == (model, stack)]
        return judging.node_view(model, stack, rows, self._max_raise)
