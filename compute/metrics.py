"""/metrics: a collector that reads the store at scrape time (no module-level metric objects)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from compute.services.capacity import capacity
from compute.services.fleet import racks
from compute.views import OUT_OF_SERVICE, drain_view
from health.policy import Lifecycle, drain_budget

if TYPE_CHECKING:
    from compute.loop import Loop
    from compute.runtime import Runtime


class StoreCollector(Collector):
    def __init__(self, rt: Runtime, loop: Loop | None) -> None:
        self.rt = rt
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        store = self.rt.store
        nodes = store.nodes()
        cap = capacity(nodes, store.allocations())

        gpus = GaugeMetricFamily(
            "computectl_gpus",
            "GPUs by pool, model and state (allocated/idle split in-service GPUs).",
            labels=["pool", "gpu_model", "state"],
        )
        for row in cap.rows:
            gpus.add_metric([row.pool, row.gpu_model, row.state], row.gpus)
        yield gpus
        yield GaugeMetricFamily(
            "computectl_gpus_installed", "GPUs installed in known nodes.", value=cap.installed
        )

        by_state = GaugeMetricFamily(
            "computectl_nodes", "Nodes by pool and lifecycle state.", labels=["pool", "state"]
        )
        counts = Counter((n.pool, n.state.value) for n in nodes)
        for pool in sorted({n.pool for n in nodes}):
            for state in Lifecycle:
                by_state.add_metric([pool, state.value], counts.get((pool, state.value), 0))
        yield by_state

        drains = GaugeMetricFamily(
            "computectl_node_drain_info",
            "Nodes out of service, with the drain reason and who owns the drain.",
            labels=["node", "pool", "state", "owner", "reason"],
        )
        for n in nodes:
            if n.state in OUT_OF_SERVICE:
                d = drain_view(n)
                drains.add_metric(
                    [d["node"], d["pool"], d["state"], d["owner"] or "", d["reason"]], 1
                )
        yield drains

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
        for n in nodes:
            p = pools[n.pool]
            p[0] += 1
            p[1] += int(n.automation_drain)
            p[2] += int(bool(n.deferred_reason))
        for pool, (size, used, waiting) in sorted(pools.items()):
            budget.add_metric([pool], drain_budget(size, self.rt.policy))
            in_use.add_metric([pool], used)
            deferred.add_metric([pool], waiting)
        yield budget
        yield in_use
        yield deferred

        tenants = GaugeMetricFamily(
            "computectl_tenant_gpus_allocated",
            "GPUs held by each tenant's running work.",
            labels=["tenant", "pool", "gpu_model"],
        )
        for t in cap.tenants:
            tenants.add_metric([t.tenant, t.pool, t.gpu_model], t.gpus)
        yield tenants

        power = GaugeMetricFamily(
            "computectl_rack_power_watts", "Latest power draw per rack.", labels=["rack"]
        )
        budget_w = GaugeMetricFamily(
            "computectl_rack_power_budget_watts", "Power budget per rack.", labels=["rack"]
        )
        for r in racks(store):
            budget_w.add_metric([r.rack.name], r.rack.power_budget_watts)
            if r.power_watts is not None:
                power.add_metric([r.rack.name], r.power_watts)
        yield power
        yield budget_w

        events = CounterMetricFamily(
            "computectl_events",
            "Lifecycle events recorded, by pool and kind.",
            labels=["pool", "kind"],
        )
        for (pool, kind), count in sorted(store.event_counts().items()):
            events.add_metric([pool, kind], count)
        yield events

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
            skipped = GaugeMetricFamily(
                "computectl_sweep_nodes_skipped",
                "Nodes the last sweep could not store or act on (node_skipped events say why).",
                value=float(last.get("skipped", 0)),
            )
            yield skipped
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
        if self.loop is not None:
            yield CounterMetricFamily(
                "computectl_sweeps", "Sweeps run by this process.", value=self.loop.sweeps
            )


def metrics_registry(rt: Runtime, loop: Loop | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(rt, loop))
    return registry
