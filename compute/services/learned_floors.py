"""Learned burn-in floors in the control plane: learned after a sweep (at most once per
[floors] refresh_seconds) from the stored burn-in results, kept in the store, and applied to
the burn-in figures a node posts, at ingest.

Why at ingest and not on the node: a node knows its own GPUs, not the fleet's; judging where
the figures arrive covers every way they come (a node's own report, a Slurm or Kubernetes
burn-in job, the simulated site) with no new round trip, nodes running an older agent
included, and the stored result says which floor judged it. The node's own verdict against
the fixed floor and its node median stands; the learned floor can only fail more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from compute.clock import Clock
from compute.config_floors import FloorsSettings
from compute.store import Store
from compute.store import floors as kept
from health.floor_learning import LearnedFloor, LearningRule, learn, stack_key
from health.floors import Floors, load_floors
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite

if TYPE_CHECKING:
    from compute.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Floored:
    """A check floors are learned for: the unit its figures are in, the key of each GPU's
    figure (None: one figure for the node, ``node_key``), the fixed floor's attribute."""

    unit: str
    gpu_key: re.Pattern[str] | None
    node_key: str
    fixed_attr: str


CHECKS: dict[str, Floored] = {
    "gemm_bf16": Floored("TFLOP/s", re.compile(r"gpu(\d+)_tflops"), "", "gemm_bf16_tflops"),
    "hbm_bandwidth": Floored("GB/s", re.compile(r"gpu(\d+)_gbps"), "", "hbm_gbps"),
    "nccl_allreduce": Floored("GB/s", None, "busbw_gbps", "nccl_busbw_gbps"),
}
HISTORY_DAYS = 40
# A process re-reads the stored table at most this often (the table changes hourly).
READ_EVERY = timedelta(seconds=60)

Key = tuple[str, str, str]  # model, stack, check


def result_stack(values: Mapping[str, Any]) -> str:
    return stack_key(
        str(values.get("driver", "")), str(values.get("cuda", "")), str(values.get("torch", ""))
    )


def figures_of(check: str, values: Mapping[str, Any]) -> dict[int, float]:
    """Each GPU's figure (or the node's, as GPU -1) in a result's values."""
    spec = CHECKS[check]
    out: dict[int, float] = {}
    if spec.gpu_key is None:
        v = values.get(spec.node_key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[-1] = float(v)
        return out
    for k, v in values.items():
        m = spec.gpu_key.fullmatch(k)
        if m and isinstance(v, int | float) and not isinstance(v, bool):
            out[int(m.group(1))] = float(v)
    return out


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


# -- judging at ingest --------------------------------------------------------------------


def learned_index(value: Mapping[str, Any] | None) -> dict[Key, Mapping[str, Any]]:
    """The stored table's learned rows by model, stack and check."""
    out: dict[Key, Mapping[str, Any]] = {}
    rows = (value or {}).get("rows")
    for row in rows if isinstance(rows, list) else []:
        # One malformed row (a hand edit of the store) is left out, never fails an ingest.
        if _sound(row):
            out[(row["model"], row["stack"], row["check"])] = row
    return out


def _sound(row: object) -> bool:
    if not isinstance(row, Mapping) or row.get("learned") is not True:
        return False
    texts = all(isinstance(row.get(k), str) for k in ("model", "stack", "check"))
    numbers = all(
        isinstance(row.get(k), int | float) and not isinstance(row.get(k), bool)
        for k in ("learned_floor", "fixed_floor", "samples")
    )
    if not (texts and numbers and row.get("check") in CHECKS):
        return False
    floor, fixed = float(row["learned_floor"]), float(row["fixed_floor"])
    return math.isfinite(floor) and math.isfinite(fixed) and 0.0 < fixed <= floor


def judge(
    model: str, results: Sequence[CheckResult], index: Mapping[Key, Mapping[str, Any]]
) -> list[CheckResult]:
    """``results`` with each burn-in figure the node passed judged against the learned floor
    for its model and stack: one below it fails its check and the burn-in's summary, with
    the floor, its samples and the node's own verdict in the values. Results without a
    learned floor, or not judged on the node (a stand-in's figures), pass through as they
    are: a check that could not be judged is no evidence against a node."""
    if not index:
        return list(results)
    out: list[CheckResult] = []
    failed: list[CheckResult] = []
    for r in results:
        judged = _judged(model, r, index)
        if judged is not r and judged.failed:
            failed.append(judged)
        out.append(judged)
    if not failed:
        return out
    return [_summary_failed(r, failed) if r.check == BURNIN_SUMMARY else r for r in out]


def _judged(model: str, r: CheckResult, index: Mapping[Key, Mapping[str, Any]]) -> CheckResult:
    if (
        r.suite is not Suite.BURNIN
        or r.check not in CHECKS
        or r.status is not Status.PASS
        or r.values.get("floors_judged") is not True
    ):
        return r
    row = index.get((model, result_stack(r.values), r.check))
    if row is None:
        return r
    floor = float(row["learned_floor"])
    values = {**r.values, "learned_floor": floor, "learned_floor_samples": int(row["samples"])}
    unit = CHECKS[r.check].unit
    low = {g: f for g, f in sorted(figures_of(r.check, r.values).items()) if f < floor}
    if not low:
        return replace(r, values=values)
    ref = (
        f"learned floor {floor:.0f} for {model} on {row['stack']} from {row['samples']} "
        f"figures; fixed floor {float(row['fixed_floor']):.0f}"
    )
    said = "; ".join(
        f"{'all-reduce bus bandwidth' if g < 0 else f'GPU {g}'} {f:.0f} {unit}"
        for g, f in low.items()
    )
    return replace(
        r,
        status=Status.FAIL,
        evidence=f"{said} ({ref})",
        values={**values, "node_verdict": Status.PASS.value},
        gpus=tuple(g for g in low if g >= 0),
    )


def _summary_failed(summary: CheckResult, failed: Sequence[CheckResult]) -> CheckResult:
    more = "; ".join(f"{r.check}: {r.evidence}" for r in failed)
    checks_failed = summary.values.get("checks_failed", 0)
    count = checks_failed if isinstance(checks_failed, int) else 0
    return replace(
        summary,
        status=Status.FAIL,
        evidence=f"{summary.evidence}; {more}" if summary.evidence else more,
        values={**summary.values, "checks_failed": count + len(failed)},
        gpus=tuple(sorted({*summary.gpus, *(g for r in failed for g in r.gpus)})),
    )


class FloorJudge:
    """What ingest judges burn-in figures with: the stored table, read again at most every
    READ_EVERY by this process (not once per request)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._index: dict[Key, Mapping[str, Any]] = {}
        self._read_at: datetime | None = None

    def index(self) -> dict[Key, Mapping[str, Any]]:
        now = self.clock.now()
        if self._read_at is None or not (self._read_at <= now < self._read_at + READ_EVERY):
            self._index = learned_index(kept.table(self.store))
            self._read_at = now
        return self._index

    def forget(self) -> None:
        """Read the table again at the next judgement (after a refresh in this process)."""
        self._read_at = None

    @staticmethod
    def wanted(results: Sequence[CheckResult]) -> bool:
        """Whether any result is one a learned floor could judge (most reports hold none)."""
        return any(r.suite is Suite.BURNIN and r.check in CHECKS for r in results)

    def judge(self, model: str, results: Sequence[CheckResult]) -> list[CheckResult]:
        return judge(model, results, self.index())
