"""/metrics: a collector that reads the store at scrape time (no module-level metric objects).

Every figure but ``computectl_replica_leading`` and ``computectl_sweeps`` comes from the
store, so every replica behind a load balancer exports the same values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from compute.config import Settings
from compute.metrics import (
    acceptance,
    budgets,
    drift,
    energy,
    fleet,
    floors,
    job_impact,
    lemons,
    power,
    racks,
    remediation,
)
from compute.metrics.tally import EventTally
from compute.store import Store
from health.policy import PolicyConfig

if TYPE_CHECKING:
    from compute.loop import Loop
    from compute.runtime import Leading, Runtime


class StoreCollector(Collector):
    def __init__(
        self,
        store: Store,
        policy: PolicyConfig,
        settings: Settings,
        loop: Loop | None = None,
        leading: Leading | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.settings = settings
        self.loop = loop
        self.leading = leading
        self.tally = EventTally()
        self.acceptance = acceptance.AcceptanceFigures()

    def collect(self) -> Iterator[Metric]:
        store = self.store
        yield from fleet.nodes(store, self.policy)
        yield from fleet.tenants(store)
        yield from budgets.budgets(store)
        yield from drift.drift(store)
        yield from fleet.power(store)
        yield from power.metrics(store, self.settings)
        yield from racks.metrics(store, self.settings)
        yield from energy.metrics(store, self.settings)
        yield from floors.metrics(store)
        yield from lemons.metrics(store)
        yield from job_impact.metrics(store)
        yield from self.acceptance.metrics(store)
        figures = self.tally.figures(store)
        yield from fleet.events(figures)
        yield from remediation.latency(figures)
        yield from remediation.observe(store, figures)
        yield from remediation.brake(store, figures)
        yield from remediation.leadership(store, self.leading)
        yield from fleet.sweeps(store)
        if self.loop is not None:
            yield CounterMetricFamily(
                "computectl_sweeps", "Sweeps run by this process.", value=self.loop.sweeps
            )


def metrics_registry(rt: Runtime, loop: Loop | None = None) -> CollectorRegistry:
    # Without leadership (tests, in-process tools) the process acts alone: no leading gauge.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(rt.store, rt.policy, rt.settings, loop, rt.leadership))
    return registry
