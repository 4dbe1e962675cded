"""The billing export's CSV, from the billing view (compute/services/billing.py's
``as_dict``, as the API answers it): written by the API and by the CLI alike (the remote
CLI too, so standard library only)."""

from __future__ import annotations

import csv
import io
from typing import Any

CSV_COLUMNS = (
    "tenant",
    "holder",
    "day",
    "pool",
    "gpu_model",
    "gpu_hours",
    "energy_kwh",
    "facility_kwh",
    "sources",
)


def _cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: names come from settings and specs, but a
    leading = + - @ would be a formula to it."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(view: dict[str, Any]) -> str:
    """The view's rows as CSV (the columns of `CSV_COLUMNS`, a header first)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in view["rows"]:
        w.writerow([_cell(r[c]) for c in CSV_COLUMNS])
    return out.getvalue()
