"""/metrics: energy per tenant, pool and GPU model, and the fleet's (compute/services/energy.py).

Counters read from the store's running totals (``energy_totals``: one small scan, never
the hourly rows), which retention never lowers: a counter only goes up."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from compute.config import Settings
from compute.store import Store
from compute.store import energy as kept

_MJ_PER_J = 1000


def metrics(store: Store, settings: Settings) -> Iterator[Metric]:
    rows = kept.totals(store)
    tenant = CounterMetricFamily(
        "computectl_tenant_energy_joules",
        "Energy the tenant's GPUs drew (their share of their nodes' measured power, host "
        "included), by pool and GPU model",
        labels=["tenant", "pool", "gpu_model"],
    )
    tenant_facility = CounterMetricFamily(
        "computectl_tenant_facility_energy_joules",
        "The tenant's energy times its sites' PUE ([energy] pue, site_pue)",
        labels=["tenant", "pool", "gpu_model"],
    )
    fleet = CounterMetricFamily(
        "computectl_fleet_energy_joules",
        "Energy the fleet's nodes drew as measured, by holder (tenant, idle, "
        "out_of_service), pool and GPU model: the sum over holders is the fleet's",
        labels=["holder", "pool", "gpu_model"],
    )
    fleet_facility = CounterMetricFamily(
        "computectl_fleet_facility_energy_joules",
        "The fleet's energy times each site's PUE, by holder, pool and GPU model",
        labels=["holder", "pool", "gpu_model"],
    )
    by_holder: dict[tuple[str, str, str], tuple[int, int]] = {}
    for holder, name, pool, model, it_mj, fac_mj in rows:
        if holder == kept.TENANT:
            tenant.add_metric([name, pool, model], it_mj / _MJ_PER_J)
            tenant_facility.add_metric([name, pool, model], fac_mj / _MJ_PER_J)
        it, fac = by_holder.get((holder, pool, model), (0, 0))
        by_holder[(holder, pool, model)] = (it + it_mj, fac + fac_mj)
    for labels, (it, fac) in sorted(by_holder.items()):
        fleet.add_metric(list(labels), it / _MJ_PER_J)
        fleet_facility.add_metric(list(labels), fac / _MJ_PER_J)
    yield from (tenant, tenant_facility, fleet, fleet_facility)
