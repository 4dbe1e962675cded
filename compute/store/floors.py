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

from compute.store.models import CheckResultRow, MetaRow, NodeRow
from compute.store.repository import Store
from compute.store.rows import table_of

META_KEY = "learned_floors"


@dataclass(frozen=True, slots=True)
class BurnInFigures:
    """One stored burn-in result of a floored check, with the model of its node."""

    node: str
    gpu_model: str
    check: str
    status: str
    values: dict[str, Any]


def burn_in_figures(
    store: Store, checks: Collection[str], since: datetime, limit: int
) -> list[BurnInFigures]:
    """The newest ``limit`` burn-in results of ``checks`` since ``since``, with their nodes'
    models (a node no longer in the inventory has no model: left out). Core rows, not the
    ORM's: the first sweep of 10,240 nodes leaves 9,213 such results (0.13 -> 0.07 s)."""
    r, n = table_of(CheckResultRow), table_of(NodeRow)
    q = (
        select(r.c.node, n.c.gpu_model, r.c.check, r.c.status, r.c["values"])
        .join(n, n.c.name == r.c.node)
        .where(r.c.suite == "burnin", r.c.check.in_(list(checks)), r.c.at >= since)
        .order_by(r.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [
            BurnInFigures(node, model, check, status, dict(values or {}))
            for node, model, check, status, values in conn.execute(q)
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
