"""The pair test on simulated pools: each pair's figure follows the two nodes' simulated faults.

A healthy pair reaches the fabric's two-node all-reduce figure (eight rails per
node, one HCA per GPU). A node with an InfiniBand port down drags every pair it
is in: NCCL sends that rail's share through another GPU's HCA, and the pair
runs at well under the lost rail's share. Degraded NVLink inside a node slows
the intra-node half of the all-reduce the same way. A GPU off the bus fails the
job. The result comes back as the line the real probe prints, so the control
plane parses and judges it exactly as a real one.
"""

from __future__ import annotations

from collections.abc import Sequence

from compute.simulation.datacenter import SimulatedDatacenter
from health.burnin.pair import RESULT_KIND, result_line
from health.simulated.fleet import SimulatedFleet
from health.simulated.hardware import unit_noise
from scheduler.pairs import PairOutcome, PairRun

# Two-node all-reduce bus bandwidth (GB/s) of a healthy pair: 8 x 400 Gb/s NDR per node
# for Hopper, 8 x 200 Gb/s HDR for A100, 8 x 800 Gb/s XDR for B200, at ~92 % of line rate.
_FABRIC_BUSBW = {"H100-SXM": 370.0, "H200": 370.0, "A100-SXM": 185.0, "B200": 740.0}
# A rail down costs more than its share: its traffic detours through PCIe to another HCA.
_RAIL_DETOUR = 0.7


class SimulatedPairs:
    def __init__(self, dc: SimulatedDatacenter) -> None:
        self.dc = dc
        self._runs = 0

    def run_pairs(
        self, pairs: Sequence[PairRun], extra_args: Sequence[str], timeout_seconds: float
    ) -> list[PairOutcome]:
        self._runs += 1
        with self.dc.fleet_access() as fleet:
            return [self._one(fleet, run, i) for i, run in enumerate(pairs)]

    def _one(self, fleet: SimulatedFleet, run: PairRun, i: int) -> PairOutcome:
        job = f"sim-pair-{self._runs}-{i}"
        factors = []
        for name in run.nodes:
            node = fleet.nodes.get(name)
            if node is None:
                return PairOutcome(run.nodes, job, "", f"no simulated node {name!r}")
            if not all(g.present for g in node.gpus):
                return PairOutcome(
                    run.nodes, job, "", f"exit 1: {name}: a GPU is not visible to CUDA"
                )
            rails = len(node.gpus)
            up = rails - len(node.ib_down)
            rail = up / rails * (_RAIL_DETOUR if node.ib_down else 1.0)
            factors.append(rail * node.nccl_factor)
        first = fleet.nodes[run.nodes[0]]
        second = fleet.nodes[run.nodes[1]]
        busbw = (
            _FABRIC_BUSBW.get(first.model, 370.0)
            * min(factors)
            * self.dc.link_factor(run.nodes[0], run.nodes[1])
            * (1.0 + 0.02 * unit_noise(first.index, second.index, 17))
        )
        result = {
            "kind": RESULT_KIND,
            "nodes": list(run.nodes),
            "device": "simulated",
            "backend": "nccl",
            "busbw_gbps": round(busbw, 3),
            "ranks": len(first.gpus) + len(second.gpus),
        }
        return PairOutcome(run.nodes, job, result_line(result) + "\n")
