"""Burn-in on simulated nodes: the same suite a real node runs, on the simulated probe."""

from __future__ import annotations

from collections.abc import Callable

from compute.domain import Node
from compute.services.collect import expectation
from compute.services.ingest import Ingest
from compute.simulation.datacenter import SimulatedDatacenter
from health.floors import load_floors
from health.runner import run_burn_in
from health.simulated import SimulatedProbe, SimulatedTelemetry
from health.thresholds import Thresholds


class SimulatedBurnIn:
    """Runs the suite at once and reports through ingest, as a node's burn-in job would."""

    def __init__(
        self,
        dc: SimulatedDatacenter,
        ingest: Ingest,
        thresholds: Thresholds,
        uuids: Callable[[str], tuple[str, ...]],
    ) -> None:
        self.dc = dc
        self.ingest = ingest
        self.thresholds = thresholds
        self.uuids = uuids
        self.floors = load_floors()

    def launch(self, node: Node) -> None:
        probe = SimulatedProbe(self.dc.fleet_access, node.name)
        telemetry = SimulatedTelemetry(self.dc.fleet_access)
        with self.dc.session():
            probe.reset()
            snap = telemetry.snapshot(node.name, since=self.dc.now())
            results = run_burn_in(
                snap,
                expectation(node, {node.name: self.uuids(node.name)}),
                self.thresholds,
                probe,
                self.floors.get(node.gpu_model),
            )
        self.ingest.ingest(node.name, results)
