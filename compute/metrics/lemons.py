"""/metrics: lemons per pool, from their marks in the store (compute/services/lemons.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.services.lemons import marks
from compute.store import Store
from health.policy import Lifecycle


def metrics(store: Store) -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "computectl_node_lemons",
        "Nodes marked lemons (failed again after repair [lemons] failures times within "
        "window_days) and not retired.",
        labels=["pool"],
    )
    per_pool: Counter[str] = Counter()
    for name in marks(store):
        node = store.node(name)
        if node is not None and node.state is not Lifecycle.RETIRED:
            per_pool[node.pool] += 1
    for pool in sorted({p.name for p in store.pools()} | set(per_pool)):
        gauge.add_metric([pool], per_pool[pool])
    yield gauge
