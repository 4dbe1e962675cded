"""How burn-in floors moved: per GPU model, software stack and check, the fixed floor, the
learned one, its samples, and the fleet's median now, a week and a month ago (from the daily
medians kept with the learned table; compute/services/learned_floors.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from compute.store import Store
from compute.store import floors as kept


def median_on_or_before(points: Sequence[Any], day: date) -> float | None:
    """The newest daily median on or before ``day`` (None: none kept that old)."""
    found: float | None = None
    for p in points:
        usable = isinstance(p, list) and len(p) == 2 and isinstance(p[1], int | float)
        if usable and str(p[0]) <= day.isoformat():
            found = float(p[1])
    return found


def report_view(value: Mapping[str, Any] | None, model: str | None = None) -> dict[str, Any]:
    if not value:
        return {
            "computed_at": None,
            "since": None,
            "rule": None,
            "note": "no floors learned yet: the first sweep of the acting control plane "
            "learns them (or [floors] learned is off)",
            "floors": [],
        }
    computed = str(value.get("computed_at") or "")
    try:
        today = datetime.fromisoformat(computed).date()
    except ValueError:
        today = None
    history = value.get("history") or {}
    rows = []
    for row in value.get("rows") or []:
        if not isinstance(row, Mapping) or (model is not None and row.get("model") != model):
            continue
        points = history.get(f"{row['model']}|{row['stack']}|{row['check']}", [])
        week = month = None
        if today is not None:
            week = median_on_or_before(points, today - timedelta(days=7))
            month = median_on_or_before(points, today - timedelta(days=30))
        rows.append({**row, "median_week_ago": week, "median_month_ago": month})
    return {
        "computed_at": computed or None,
        "since": value.get("since"),
        "rule": value.get("rule"),
        "note": "",
        "floors": rows,
    }


def report(store: Store, model: str | None = None) -> dict[str, Any]:
    """The floors report, as last learned (no learning per request)."""
    return report_view(kept.table(store), model)
