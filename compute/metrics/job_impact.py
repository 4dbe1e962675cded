"""/metrics: GPU time tenants lost to infrastructure faults (compute/services/job_impact.py).

Counters read from the kept hits (never deleted, so a counter only goes up): the GPUs of
each job or pod a fault hit, from its start to the drain or to its end."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from compute.store import Store
from compute.store import impact as kept


def metrics(store: Store) -> Iterator[Metric]:
    lost = CounterMetricFamily(
        "computectl_tenant_lost_gpu_seconds",
        "GPU-seconds (Prometheus' base unit; / 3600 for GPU-hours) of the tenant's jobs and "
        "pods hit by infrastructure faults, by cause "
        "(drain: on a node computectl drained for a fault; node_fail: ended by its node's "
        "failure on a node with a finding)",
        labels=["tenant", "cause"],
    )
    hit = GaugeMetricFamily(
        "computectl_tenant_jobs_hit",
        "Jobs and pods of the tenant hit by infrastructure faults, by cause",
        labels=["tenant", "cause"],
    )
    for tenant, cause, hours, count in kept.lost_totals(store):
        lost.add_metric([tenant, cause], hours * 3600.0)
        hit.add_metric([tenant, cause], count)
    yield from (lost, hit)
