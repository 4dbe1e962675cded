"""What learned floors read and keep (compute/services/learned_floors.py): the burn-in
figures of the checks floors are learned for, and the learned table in the meta row.

The table lives in one meta row, not a table of its own: it is small (a row per model, stack
and check, with a few weeks of daily medians) and is replaced whole once an hour.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from compute.store.models import CheckResultRow, MetaRow, NodeRow
from compute.store.repository import Store

META_KEY = "learned_floors"


@dataclass(frozen=True, slots=True)
class BurnInFigures:
    """One stored burn-in result of a floored check, with the model of its node."""

    node: str
    gpu_model: str
    check: str
    status: str
    at: datetime
    values: dict[str, Any]


def burn_in_figures(
    store: Store, checks: Collection[str], since: datetime, limit: int
) -> list[BurnInFigures]:
    """The newest ``limit`` burn-in results of ``checks`` since ``since``, with their nodes'
    models (a node no longer in the inventory has no model: left out)."""
    q = (
        select(
            CheckResultRow.node,
            NodeRow.gpu_model,
            CheckResultRow.check,
            CheckResultRow.status,
            CheckResultRow.at,
            CheckResultRow.values,
        )
        .join(NodeRow, NodeRow.name == CheckResultRow.node)
        .where(
            CheckResultRow.suite == "burnin",
            CheckResultRow.check.in_(list(checks)),
            CheckResultRow.at >= since,
        )
        .order_by(CheckResultRow.id.desc())
        .limit(limit)
    )
    with Session(store.engine) as s:
        return [
            BurnInFigures(node, model, check, status, at, dict(values or {}))
            for node, model, check, status, at, values in s.execute(q)
        ]


def table(store: Store) -> dict[str, Any] | None:
    return store.meta(META_KEY)


def replace_table(store: Store, read_at: str | None, value: dict[str, Any]) -> bool:
    """Write the table if it is still the one computed at ``read_at`` (None: there was none);
    False where another writer replaced it meanwhile (nothing written)."""
    with store.transaction() as tx:
        s = tx.s
        row = s.get(MetaRow, META_KEY, with_for_update=True)
        now_at = None if row is None else (row.value or {}).get("computed_at")
        if now_at != read_at:
            return False
        if row is None:
            s.add(MetaRow(key=META_KEY, value=value))
        else:
            row.value = value
        return True
