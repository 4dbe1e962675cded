"""Floors learned from the fleet's own passing burn-ins, per GPU model and software stack.

A fixed floor (health/data/floors.toml) sits ~10 % under a reference figure, so that no
healthy GPU anywhere fails it: on a fleet whose GPUs all measure near the reference, a GPU
8 % slow still passes it, and on a fleet that measures below the reference (another driver,
a lower power cap) it drains healthy GPUs. The learned floor sits a robust spread under what
this fleet's own healthy GPUs of the same model and stack measure:

    floor = median - k * 1.4826 * MAD   (1.4826 * MAD estimates the standard deviation)

bounded on every side: never above ``median * (1 - min_margin)`` (a fleet of near-identical
figures would otherwise put it at the median and fail half of it), never below the fixed
floor, never above ``fixed * max_raise`` (a history of wrong figures cannot fail the fleet).
Median and MAD are rank statistics: a few extreme figures move them by a few ranks, not by
their size. Below ``min_samples`` figures or ``min_nodes`` nodes the fixed floor stands, and
the answer says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# The standard deviation of a normal distribution per unit of its median absolute deviation.
MAD_TO_SIGMA = 1.4826
# The most [floors] max_raise may be: a node takes no learned floor above its fixed floor
# times this, whatever the control plane answers (health/floor_judging.py).
MAX_RAISE_LIMIT = 3.0


@dataclass(frozen=True, slots=True)
class LearningRule:
    k: float = 4.0
    min_margin: float = 0.03
    max_raise: float = 1.25
    min_samples: int = 32
    min_nodes: int = 4


@dataclass(frozen=True, slots=True)
class LearnedFloor:
    """``floor`` is what to judge with: learned where ``learned``, else the fixed one, with
    ``reason`` saying why."""

    fixed: float
    floor: float
    samples: int
    nodes: int
    median: float | None
    mad: float | None
    learned: bool
    reason: str = ""


def stack_key(driver: str, cuda: str, torch: str) -> str:
    """The software stack a burn-in figure was measured on, as one key: figures (and a
    known answer's checksum) compare only within a stack. An unknown part reads '-'."""
    return f"driver={driver or '-'} cuda={cuda or '-'} torch={torch or '-'}"


def usable(figures: Sequence[float]) -> list[float]:
    """The figures a floor can learn from: finite and above zero (a failed kernel's 0 or a
    NaN is no measure of speed)."""
    return [f for f in figures if math.isfinite(f) and f > 0.0]


def learn(
    figures: Sequence[float], fixed: float, rule: LearningRule, nodes: int | None = None
) -> LearnedFloor:
    """The floor for one model, stack and check from its passing figures (``nodes``: how
    many nodes they came from; None counts each figure as its own)."""
    good = usable(figures)
    n = len(good)
    from_nodes = n if nodes is None else nodes
    if n == 0:
        return LearnedFloor(fixed, fixed, 0, from_nodes, None, None, False, "no passing figures")
    median = statistics.median(good)
    mad = statistics.median(abs(f - median) for f in good)
    if n < rule.min_samples:
        why = f"{n} figures, fewer than the {rule.min_samples} a floor learns from"
        return LearnedFloor(fixed, fixed, n, from_nodes, median, mad, False, why)
    if from_nodes < rule.min_nodes:
        why = f"figures from {from_nodes} nodes, fewer than {rule.min_nodes}"
        return LearnedFloor(fixed, fixed, n, from_nodes, median, mad, False, why)
    floor = bounded(median, mad, fixed, rule)
    return LearnedFloor(fixed, floor, n, from_nodes, median, mad, True)


def bounded(median: float, mad: float, fixed: float, rule: LearningRule) -> float:
    spread = median - rule.k * MAD_TO_SIGMA * mad
    floor = min(spread, median * (1.0 - rule.min_margin))
    return min(max(floor, fixed), fixed * rule.max_raise)


def below(figure: float, floor: LearnedFloor) -> bool:
    """Whether a figure fails the floor (a learned one only: the fixed floor is the node's
    own verdict, judged where it ran)."""
    return floor.learned and figure < floor.floor
