"""What the fleet's SDC reference reads (compute/services/sdc_reference.py): the passing
results of the SDC check, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from compute.store.models import CheckResultRow
from compute.store.repository import Store
from health.checks.sdc import CHECK_NAME


@dataclass(frozen=True, slots=True)
class SdcPass:
    node: str
    at: datetime
    values: dict[str, Any]


def passes(store: Store, since: datetime, limit: int) -> list[SdcPass]:
    """The newest ``limit`` passing SDC results since ``since``. Their model and stack are
    matched by the caller: they live in the result's values (JSON), read alike on SQLite and
    PostgreSQL only once loaded."""
    r = CheckResultRow
    q = (
        select(r.node, r.at, r.values)
        .where(r.check == CHECK_NAME, r.status == "pass", r.at >= since)
        .order_by(r.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [SdcPass(node, at, dict(values or {})) for node, at, values in conn.execute(q)]
