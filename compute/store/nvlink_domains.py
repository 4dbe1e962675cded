"""What the NVLink domain judgement (compute/services/nvlink_domains.py) reads after every
sweep: each node's recorded domain and whether its nvlink check is failing, in one narrow
query of three JSON fields, not the whole fleet's records (a site of 10,240 nodes, most of
them in no domain at all). The domain is the node's own report's, else its listing's
(health/nvlink_domain.py's placed_domain, as domain_of answers for a whole node)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from compute.store.models import NodeRow
from compute.store.repository import Store
from compute.store.rows import table_of
from health.nvlink_domain import placed_domain
from health.policy import Lifecycle


@dataclass(frozen=True, slots=True)
class Member:
    node: str
    domain: str  # as recorded: outside input, believed only once checked by the caller
    failing: bool  # its nvlink check's latest result failed


def members(store: Store) -> list[Member]:
    """Every node (not retired) with a recorded NVLink domain (its own or its listing's)."""
    t = table_of(NodeRow)
    domain = t.c.health[("last_values", "nvlink", "nvlink_domain")].as_string()
    listed = t.c.health[("listed_domain",)].as_string()
    streak = t.c.health[("streaks", "nvlink")].as_integer()
    q = select(t.c.name, domain, listed, streak).where(
        or_(domain.is_not(None), listed.is_not(None)), t.c.state != Lifecycle.RETIRED.value
    )
    with store.engine.connect() as conn:
        return [
            Member(name, d, bool(s and s > 0))
            for name, own, elsewise, s in conn.execute(q)
            if (d := placed_domain(own, elsewise))
        ]
