"""Trend and headroom arithmetic, pure: a least-squares slope over samples, a value forecast
a horizon ahead, days until a pool fills, headroom after losing the largest rack.

Every function takes plain numbers and answers plain numbers (or None for "never"), so the
property tests (tests/unit/test_forecast.py) hold them to their algebra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

# Fewer points than this, or all at one instant, make no trend: flat.
MIN_POINTS = 2
# Samples closer together than this (seconds, in practice) are one instant.
MIN_SPREAD = 1e-3
# Slower than this (units a day) is not filling.
MIN_RATE = 1e-6


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points, in y per unit of x; 0 where there is no trend
    to read (fewer than two points, or the x all within MIN_SPREAD of each other)."""
    if len(points) < MIN_POINTS:
        return 0.0
    xs = [x for x, _ in points]
    if max(xs) - min(xs) < MIN_SPREAD:
        return 0.0
    mx = math.fsum(xs) / len(xs)
    # y measured from the first point: the same slope (the x deviations sum to 0), and a
    # constant series is exactly flat rather than the rounding of its mean.
    y0 = points[0][1]
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx <= 0.0:
        return 0.0
    sxy = math.fsum((x - mx) * (y - y0) for x, y in points)
    return sxy / sxx


def timed(points: Sequence[tuple[datetime, float]]) -> list[tuple[float, float]]:
    """(seconds since the first point, value)."""
    if not points:
        return []
    t0 = points[0][0]
    return [((t - t0).total_seconds(), v) for t, v in points]


def ahead(now_value: float, per_second: float, horizon_seconds: float) -> float:
    """The value ``horizon_seconds`` ahead at ``per_second``; a falling trend forecasts no
    lower than now (a forecast is for warning early, never for forgiving)."""
    return now_value + max(0.0, per_second) * max(0.0, horizon_seconds)


def days_until_full(used: float, usable: float, per_day: float) -> float | None:
    """Days until ``used`` reaches ``usable`` at ``per_day``; 0 when full already; None
    when not filling (flat, falling, or slower than MIN_RATE a day: a few GPUs in a
    thousand years is not a date to plan for)."""
    if used >= usable:
        return 0.0
    if per_day <= MIN_RATE:
        return None
    return (usable - used) / per_day


def headroom(limit: float, draw: float) -> float:
    """What may still be drawn under ``limit`` (negative: over it by that much)."""
    return limit - draw


def n_minus_one(
    idle_by_rack: Mapping[str, int], allocated_by_rack: Mapping[str, int]
) -> tuple[str, int]:
    """The largest rack (most GPUs, idle and allocated; ties by name) and the GPUs left free
    elsewhere once its allocated GPUs are moved there: idle outside it less allocated in
    it (negative: that many GPUs of work would have nowhere to go). ("", total idle) for no
    racks."""
    racks = set(idle_by_rack) | set(allocated_by_rack)
    if not racks:
        return "", 0
    size = {r: idle_by_rack.get(r, 0) + allocated_by_rack.get(r, 0) for r in racks}
    largest = min(racks, key=lambda r: (-size[r], r))
    idle_elsewhere = sum(v for r, v in idle_by_rack.items() if r != largest)
    return largest, idle_elsewhere - allocated_by_rack.get(largest, 0)
