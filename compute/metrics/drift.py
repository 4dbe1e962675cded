"""Tenants' drift (compute/services/drift.py), from the store: every replica says the same."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.store import Store
from compute.store import drift as kept


def drift(store: Store) -> Iterator[Metric]:
    drifting = GaugeMetricFamily(
        "computectl_tenant_drift",
        "1 for each of a tenant's objects whose live state differed from the tenant's spec "
        "at the last drift check of its backend (a hand edit, an object gone).",
        labels=["tenant", "backend", "object"],
    )
    for d in kept.drifts(store):
        drifting.add_metric([d.tenant, d.backend, d.object], 1.0)
    checked = GaugeMetricFamily(
        "computectl_tenant_drift_checked_timestamp_seconds",
        "When a drift check last read the backend's tenants (seconds since the epoch).",
        labels=["backend"],
    )
    failing = GaugeMetricFamily(
        "computectl_tenant_drift_check_failing",
        "1 while the last drift check tried could not read the backend (its drift is as "
        "last seen).",
        labels=["backend"],
    )
    for c in kept.checks(store):
        if c.checked_at is not None:
            checked.add_metric([c.backend], c.checked_at.timestamp())
        failing.add_metric([c.backend], 1.0 if c.error else 0.0)
    yield drifting
    yield checked
    yield failing
