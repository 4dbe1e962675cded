"""Remediation figures: how fast findings become drains, how long repairs take, why nodes
were drained, what observe mode would have done, the brake and leadership."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from compute.metrics.tally import DETECTION_BUCKETS, REPAIR_BUCKETS, EventFigures
from compute.store import Store
from compute.store import metrics_reads as reads

if TYPE_CHECKING:
    from compute.runtime import Leading


def _histogram(
    name: str, doc: str, bounds: Sequence[float], by_pool: Mapping[str, reads.Histogram]
) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=["pool"])
    for pool, h in sorted(by_pool.items()):
        buckets = [(repr(b), float(c)) for b, c in zip(bounds, h.counts, strict=True)]
        buckets.append(("+Inf", float(h.count)))
        family.add_metric([pool], buckets, sum_value=h.total)
    return family


def latency(figures: EventFigures) -> Iterator[Metric]:
    yield _histogram(
        "computectl_detection_to_drain_seconds",
        "Seconds from a finding known to the control plane to automation's drain for it.",
        DETECTION_BUCKETS,
        figures.detection,
    )
    yield _histogram(
        "computectl_time_to_repair_seconds",
        "Seconds from a node's drain to its return to service.",
        REPAIR_BUCKETS,
        figures.repair,
    )
    drains = CounterMetricFamily(
        "computectl_drains",
        "Nodes taken out of service, by check and cause (fatal, consecutive, burn_in, "
        "periodic, operator, adopted).",
        labels=["pool", "check", "cause"],
    )
    for (pool, check, cause), n in sorted(figures.drains.items()):
        drains.add_metric([pool, check, cause], n)
    yield drains


def observe(store: Store, figures: EventFigures) -> Iterator[Metric]:
    would = CounterMetricFamily(
        "computectl_would_act",
        "Decisions observe mode recorded instead of carrying out.",
        labels=["pool", "action", "check"],
    )
    for (pool, action, check), n in sorted(figures.would.items()):
        would.add_metric([pool, action, check], n)
    yield would
    mode = GaugeMetricFamily(
        "computectl_pool_observe",
        "1 while a pool is in observe mode (decisions recorded, nothing done).",
        labels=["pool"],
    )
    for pool, m in sorted(reads.pool_modes(store).items()):
        mode.add_metric([pool], 1.0 if m == "observe" else 0.0)
    yield mode


def brake(store: Store, figures: EventFigures) -> Iterator[Metric]:
    incidents = reads.open_incidents(store)
    engaged = GaugeMetricFamily(
        "computectl_brake_engaged",
        "1 per open incident: automatic drains stop in its rack, switch or pool.",
        labels=["scope_kind", "scope", "pool"],
    )
    for i in incidents:
        engaged.add_metric([i.scope_kind, i.scope, i.pool], 1)
    yield engaged
    yield GaugeMetricFamily(
        "computectl_incidents_open", "Open shared-cause incidents.", value=len(incidents)
    )
    held = CounterMetricFamily(
        "computectl_drains_held", "Drains a brake held back.", labels=["pool"]
    )
    for pool, n in sorted(figures.held.items()):
        held.add_metric([pool], n)
    yield held


def leadership(store: Store, leading: Leading | None) -> Iterator[Metric]:
    # Every lease in the store, by name: which one elects the acting replica is
    # compute/services/leadership.py's business.
    expires = GaugeMetricFamily(
        "computectl_leader_lease_expires_timestamp_seconds",
        "When a lease runs out unless its holder renews it (the store's clock).",
        labels=["lease", "holder"],
    )
    epoch = GaugeMetricFamily(
        "computectl_leader_epoch",
        "Holders a lease has had so far: it grows by one at each change of leader.",
        labels=["lease"],
    )
    for lease in reads.leases(store):
        expires.add_metric([lease.name, lease.holder], lease.expires_at.timestamp())
        epoch.add_metric([lease.name], lease.epoch)
    yield expires
    yield epoch
    if leading is not None:
        yield GaugeMetricFamily(
            "computectl_replica_leading",
            "1 while this replica holds the lease to act (the one per-replica figure).",
            value=1.0 if leading.acting() else 0.0,
        )
