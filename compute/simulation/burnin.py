"""Burn-in on simulated nodes: the same suite a real node runs, on the simulated probe."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

from compute.domain import Node
from compute.services.collect import expectation
from compute.services.ingest import Ingest
from compute.simulation.datacenter import SimulatedDatacenter
from health.floors import load_floors
from health.result import CheckResult
from health.runner import run_burn_in
from health.simulated import SimulatedFleet, SimulatedProbe, SimulatedTelemetry
from health.thresholds import Thresholds


class SimulatedBurnIn:
    """Runs the suite at once and reports through ingest, as a node's burn-in job would."""

    def __init__(
        self,
        dc: SimulatedDatacenter,
        ingest: Ingest,
        thresholds: Thresholds,
        uuids: Callable[[Sequence[str]], Mapping[str, tuple[str, ...]]],
    ) -> None:
        self.dc = dc
        self.ingest = ingest
        self.thresholds = thresholds
        self.uuids = uuids
        self.floors = load_floors()

    def launch(self, node: Node) -> None:
        self.launch_many([node])

    def launch_many(self, nodes: Sequence[Node]) -> None:
        """Each node's suite, then all their results in one write (as many nodes' jobs
        reporting at once would, without a transaction each)."""
        reports: dict[str, list[CheckResult]] = {}
        uuids = self.uuids([n.name for n in nodes])
        with self.dc.fleet_access() as fleet:

            def held() -> AbstractContextManager[SimulatedFleet]:
                # The world as this operation holds it: each GPU's measure (17 a node) took
                # the world again, nested, at a cost above the measure's own.
                return nullcontext(fleet)

            telemetry = SimulatedTelemetry(held)
            since = self.dc.now()
            for node in nodes:
                probe = SimulatedProbe(held, node.name)
                probe.reset()
                reports[node.name] = run_burn_in(
                    telemetry.snapshot(node.name, since=since),
                    expectation(node, uuids),
                    self.thresholds,
                    probe,
                    self.floors.get(node.gpu_model),
                )
        if len(reports) == 1:
            ((name, results),) = reports.items()
            self.ingest.ingest(name, results)  # a node's own report, checked as one
        else:
            # The nodes as the remediator has just stored them (burn-in started).
            self.ingest.ingest_many(reports, known={n.name: n for n in nodes})
