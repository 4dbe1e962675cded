"""Fleet figures: GPUs and nodes by state, drains, budgets, tenants, racks, events, sweeps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from compute.metrics.tally import EventFigures
from compute.services.fleet import racks
from compute.store import Store
from compute.store.metrics_reads import NodeGroup, node_groups, out_of_service, tenant_gpus
from compute.views import OUT_OF_SERVICE
from health.policy import Lifecycle, PolicyConfig, drain_budget


def nodes(store: Store, policy: PolicyConfig) -> Iterator[Metric]:
    groups = node_groups(store)
    yield from _gpus(groups)
    by_state = GaugeMetricFamily(
        "computectl_nodes", "Nodes by pool and lifecycle state.", labels=["pool", "state"]
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for g in groups:
        counts[(g.pool, g.state)] += g.nodes
    for pool in sorted({g.pool for g in groups}):
        for state in Lifecycle:
            by_state.add_metric([pool, state.value], counts.get((pool, state.value), 0))
    yield by_state

    drains = GaugeMetricFamily(
        "computectl_node_drain_info",
        "Nodes out of service, with the drain reason and who owns the drain.",
        labels=["node", "pool", "state", "owner", "reason"],
    )
    for d in out_of_service(store, OUT_OF_SERVICE):
        drains.add_metric([d.node, d.pool, d.state, d.owner, d.reason], 1)
    yield drains
    yield from _budgets(groups, policy)


def _gpus(groups: list[NodeGroup]) -> Iterator[Metric]:
    gpus = GaugeMetricFamily(
        "computectl_gpus",
        "GPUs by pool, model and state (allocated/idle split in-service GPUs).",
        labels=["pool", "gpu_model", "state"],
    )
    # The split of compute.services.capacity.gpu_states, summed by the database.
    split: dict[tuple[str, str, str], int] = defaultdict(int)
    for g in groups:
        if g.state == Lifecycle.IN_SERVICE.value:
            split[(g.pool, g.gpu_model, "allocated")] += g.allocated
            split[(g.pool, g.gpu_model, "idle")] += g.gpus - g.allocated
        else:
            split[(g.pool, g.gpu_model, g.state)] += g.gpus
    for (pool, model, state), n in sorted(split.items()):
        if n:
            gpus.add_metric([pool, model, state], n)
    yield gpus
    yield GaugeMetricFamily(
        "computectl_gpus_installed",
        "GPUs installed in known nodes.",
        value=sum(g.gpus for g in groups),
    )


def _budgets(groups: list[NodeGroup], policy: PolicyConfig) -> Iterator[Metric]:
    budget = GaugeMetricFamily(
        "computectl_drain_budget_nodes",
        "Nodes automation may hold out of service at once, per pool.",
        labels=["pool"],
    )
    in_use = GaugeMetricFamily(
        "computectl_remediation_nodes",
        "Nodes out of service for automated remediation, per pool.",
        labels=["pool"],
    )
    deferred = GaugeMetricFamily(
        "computectl_drain_deferred_nodes",
        "Nodes that should be drained but wait for the drain budget.",
        labels=["pool"],
    )
    pools: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for g in groups:
        p = pools[g.pool]
        p[0] += g.nodes
        p[1] += g.automation_drains
        p[2] += g.deferred
    for pool, (size, used, waiting) in sorted(pools.items()):
        budget.add_metric([pool], drain_budget(size, policy))
        in_use.add_metric([pool], used)
        deferred.add_metric([pool], waiting)
    yield budget
    yield in_use
    yield deferred


def tenants(store: Store) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "computectl_tenant_gpus_allocated",
        "GPUs held by each tenant's running work.",
        labels=["tenant", "pool", "gpu_model"],
    )
    for (tenant, pool, model), gpus in sorted(tenant_gpus(store).items()):
        family.add_metric([tenant, pool, model], gpus)
    yield family


def power(store: Store) -> Iterator[Metric]:
    watts = GaugeMetricFamily(
        "computectl_rack_power_watts", "Latest power draw per rack.", labels=["rack"]
    )
    budget = GaugeMetricFamily(
        "computectl_rack_power_budget_watts", "Power budget per rack.", labels=["rack"]
    )
    for r in racks(store):
        budget.add_metric([r.rack.name], r.rack.power_budget_watts)
        if r.power_watts is not None:
            watts.add_metric([r.rack.name], r.power_watts)
    yield watts
    yield budget


def events(figures: EventFigures) -> Iterator[Metric]:
    family = CounterMetricFamily(
        "computectl_events",
        "Lifecycle events recorded, by pool and kind.",
        labels=["pool", "kind"],
    )
    for (pool, kind), count in sorted(figures.kinds.items()):
        family.add_metric([pool, kind], count)
    yield family


def sweeps(store: Store) -> Iterator[Metric]:
    last = store.meta("last_sweep")
    if last:
        yield GaugeMetricFamily(
            "computectl_last_sweep_timestamp_seconds",
            "When the last sweep ran (control-plane clock).",
            value=datetime.fromisoformat(last["at"]).timestamp(),
        )
        yield GaugeMetricFamily(
            "computectl_last_sweep_duration_seconds",
            "How long the last sweep took.",
            value=float(last["duration_seconds"]),
        )
        yield GaugeMetricFamily(
            "computectl_last_sweep_results",
            "Check results the last sweep collected.",
            value=float(last["results"]),
        )
        yield GaugeMetricFamily(
            "computectl_sweep_nodes_skipped",
            "Nodes the last sweep could not store or act on (node_skipped events say why).",
            value=float(last.get("skipped", 0)),
        )
        failing = GaugeMetricFamily(
            "computectl_sweep_backend_up",
            "Whether each backend that failed the last sweep answered (0); "
            "backends that answered are not listed.",
            labels=["backend"],
        )
        for b in last.get("failed_backends", []):
            failing.add_metric([str(b)], 0)
        yield failing
    good = store.meta("last_good_sweep")
    if good and "wall_at" in good:
        yield GaugeMetricFamily(
            "computectl_last_good_sweep_timestamp_seconds",
            "When a sweep last reached every backend (wall clock): its age is how long "
            "remediation has not fully worked.",
            value=float(good["wall_at"]),
        )
