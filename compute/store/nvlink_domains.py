"""What the NVLink domain judgement (compute/services/nvlink_domains.py) reads after every
sweep: each node's recorded domain and whether its nvlink check is failing, in one narrow
query of two JSON fields, not the whole fleet's records (a site of 10,240 nodes, most of
them in no domain at all)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from compute.store.models import NodeRow
from compute.store.repository import Store
from compute.store.rows import table_of
from health.policy import Lifecycle


@dataclass(frozen=True, slots=True)
class Member:
    node: str
    domain: str  # as recorded: outside input, believed only once checked by the caller
    failing: bool  # its nvlink check's latest result failed


def members(store: Store) -> list[Member]:
    """Every node (not retired) with a recorded NVLink domain."""
    t = table_of(NodeRow)
    domain = t.c.health[("last_values", "nvlink", "nvlink_domain")].as_string()
    streak = t.c.health[("streaks", "nvlink")].as_integer()
    q = select(t.c.name, domain, streak).where(
        domain.is_not(None), t.c.state != Lifecycle.RETIRED.value
    )
    with store.engine.connect() as conn:
        return [
            Member(name, str(d), bool(s and s > 0))
            for name, d, s in conn.execute(q)
            if isinstance(d, str) and d
        ]
