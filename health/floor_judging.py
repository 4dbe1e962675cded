"""The rule that judges burn-in figures against learned floors, in one place for both judges:
the control plane at ingest (compute/services/learned_floors.py) and the node's own check
(health/node_check.py), so a node's exit code and the control plane's verdict agree.

The node asks the control plane for the learned floors of its model and software stack
(``GET /api/v1/floors/learned``, ``node_view``); the answer is hostile input, checked whole by
``parse_node_view`` against the node's own fixed floor and the bounds learning keeps. A node
that cannot get a sound answer judges with its fixed floors and says so (``unavailable``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from health import inputs
from health.floor_learning import MAX_RAISE_LIMIT, stack_key
from health.floors import Floors
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite


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
# The stored table rounds floors to 3 decimals: a floor at its ceiling may round above it.
ROUNDING = 0.001
MAX_SAMPLES = 10**12
# What the route takes and the node asks with: the model as the inventory names it (NVML's
# names too), the stack as stack_key makes it (printable ASCII).
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._()+/-]*$"
STACK_PATTERN = r"^[ -~]+$"
MAX_STACK = 200

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


def wanted(results: Sequence[CheckResult]) -> bool:
    """Whether any result is one a learned floor could judge (most reports hold none)."""
    return any(r.suite is Suite.BURNIN and r.check in CHECKS for r in results)


def judgeable(r: CheckResult) -> bool:
    """A burn-in figure the node judged against its floors and passed: only such a result
    can be failed by a learned floor (a stand-in's figures are no evidence)."""
    return (
        r.suite is Suite.BURNIN
        and r.check in CHECKS
        and r.status is Status.PASS
        and r.values.get("floors_judged") is True
    )


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
    if not judgeable(r):
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
        evidence=_fits(f"{said} ({ref})"),
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
        evidence=_fits(f"{summary.evidence}; {more}" if summary.evidence else more),
        values={**summary.values, "checks_failed": count + len(failed)},
        gpus=tuple(sorted({*summary.gpus, *(g for r in failed for g in r.gpus)})),
    )


def _fits(evidence: str) -> str:
    # A node's report is refused whole if one evidence is longer than a result may hold.
    limit = inputs.MAX_EVIDENCE
    return evidence if len(evidence) <= limit else evidence[: limit - 3] + "..."


# -- on the node ---------------------------------------------------------------------------


def node_view(
    model: str, stack: str, rows: Sequence[Mapping[str, Any]], max_raise: float | None
) -> dict[str, Any]:
    """The answer of ``GET /api/v1/floors/learned``: the learned rows of one model and stack,
    and the ceiling (``max_raise``) they were learned under."""
    return {
        "model": model,
        "stack": stack,
        "max_raise": max_raise,
        "floors": [
            {
                "check": row["check"],
                "learned_floor": float(row["learned_floor"]),
                "fixed_floor": float(row["fixed_floor"]),
                "samples": int(row["samples"]),
            }
            for row in rows
        ],
    }


class FloorAnswerError(ValueError):
    """The control plane's answer is not a sound learned-floor table: nothing of it is used."""


def parse_node_view(
    raw: object, model: str, stack: str, fixed: Floors
) -> dict[Key, Mapping[str, Any]]:
    """The learned rows of an answer, as ``judge`` takes them, each bounded as learning bounds
    it: a finite floor at or above this node's fixed floor and at most that floor times the
    answer's ``max_raise`` (itself at most what the settings allow). All or nothing."""
    if not isinstance(raw, Mapping) or raw.get("model") != model or raw.get("stack") != stack:
        raise FloorAnswerError("the answer is not the learned floors of this model and stack")
    rows = raw.get("floors")
    if not isinstance(rows, list) or len(rows) > len(CHECKS):
        raise FloorAnswerError("the answer's 'floors' is not a list of at most one per check")
    if not rows:
        return {}
    cap = _positive(raw.get("max_raise"))
    if cap is None or not 1.0 <= cap <= MAX_RAISE_LIMIT:
        raise FloorAnswerError(f"the answer's max_raise is not from 1 to {MAX_RAISE_LIMIT:g}")
    out: dict[Key, Mapping[str, Any]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            raise FloorAnswerError("a row of the answer is not an object")
        check = row.get("check")
        if not isinstance(check, str) or check not in CHECKS or (model, stack, check) in out:
            raise FloorAnswerError("a row of the answer names no floored check, or one twice")
        floor, samples = _positive(row.get("learned_floor")), row.get("samples")
        own = float(getattr(fixed, CHECKS[check].fixed_attr))
        if floor is None or not own <= floor <= own * cap + ROUNDING:
            raise FloorAnswerError(
                f"the learned {check} floor is not a number from the fixed floor {own:g} to "
                f"{own * cap:g}"
            )
        if (
            isinstance(samples, bool)
            or not isinstance(samples, int)
            or not 1 <= samples <= MAX_SAMPLES
        ):
            raise FloorAnswerError(f"the learned {check} floor's samples is not a count")
        out[(model, stack, check)] = {
            "model": model,
            "stack": stack,
            "check": check,
            "learned": True,
            "learned_floor": floor,
            "fixed_floor": own,
            "samples": samples,
        }
    return out


def _positive(v: object) -> float | None:
    """A finite number above zero, else None (JSON's NaN and Infinity, an integer too large
    for a float)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) and f > 0.0 else None


def unavailable(results: Sequence[CheckResult], why: str) -> list[CheckResult]:
    """``results`` judged with the fixed floors alone, each figure a learned floor would have
    judged saying so in its evidence (``why`` cut to 200 characters, control characters
    escaped: the report is refused whole for one in an evidence)."""
    note = f"learned floors unavailable: {inputs.printable(why[:200])}"
    return [
        replace(r, evidence=_fits(f"{r.evidence}; {note}" if r.evidence else note))
        if r.suite is Suite.BURNIN and r.check in CHECKS and r.values.get("floors_judged") is True
        else r
        for r in results
    ]


def node_verdict(
    model: str,
    results: Sequence[CheckResult],
    fixed: Floors | None,
    lookup: Callable[[str, str], object],
) -> list[CheckResult]:
    """The node's burn-in judged as the control plane judges it at ingest, with the learned
    floors ``lookup(model, stack)`` answers (the raw answer; LookupError where it could not
    be had). Whatever goes wrong, the fixed floors judge, and the results say why."""
    stacks = sorted({result_stack(r.values) for r in results if judgeable(r)})
    if not stacks:
        return list(results)
    if fixed is None:
        return unavailable(results, f"no fixed floor for {model or 'this GPU model'} here")
    index: dict[Key, Mapping[str, Any]] = {}
    for stack in stacks:
        if len(stack) > MAX_STACK or re.fullmatch(STACK_PATTERN, stack) is None:
            return unavailable(results, "the software stack cannot be asked for")
        try:
            index.update(parse_node_view(lookup(model, stack), model, stack, fixed))
        except (LookupError, FloorAnswerError) as exc:
            return unavailable(results, str(exc))
    return judge(model, results, index)
