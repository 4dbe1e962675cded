"""A simulated node's GPU power as a PowerSource: the same readings the telemetry gives,
with its model's limits (health/simulated/hardware.py, POWER_LIMITS), and limits that are
set for real in the model: a capped GPU draws no more than its cap."""

from __future__ import annotations

from health.power import GpuPower, NodeReading, PowerError
from health.simulated.hardware import POWER_LIMITS, noise_state
from health.simulated.telemetry import FleetAccess


class SimulatedPower:
    def __init__(self, access: FleetAccess, node: str) -> None:
        self._access = access
        self._node = node

    def read_power(self) -> tuple[GpuPower, ...]:
        with self._access() as fleet:
            n = fleet.nodes.get(self._node)
            if n is None:
                raise PowerError(f"no simulated node {self._node!r}")
            lo, hi, default = POWER_LIMITS[n.model]
            minute = int(fleet.now // 60)
            out = []
            for g in n.gpus:
                if not g.present:
                    continue
                limit = fleet.power_limit(n, g.index)
                watts = fleet.gpu_power(n, g, noise_state(g.noise, minute))
                out.append(
                    GpuPower(
                        index=g.index,
                        uuid=g.uuid,
                        power_watts=round(watts, 1),
                        limit_watts=limit,
                        enforced_limit_watts=limit,
                        default_limit_watts=default,
                        min_limit_watts=lo,
                        max_limit_watts=hi,
                    )
                )
            return tuple(out)

    def node_reading(self, ipmitool: str | None) -> NodeReading:
        """The node's draw as the simulated BMC reads it: host and GPUs (what the sweep's
        rack sums count); ``ipmitool`` is not run, there is no BMC to ask."""
        with self._access() as fleet:
            n = fleet.nodes.get(self._node)
            if n is None:
                return NodeReading(error=f"not available: no simulated node {self._node!r}")
            minute = int(fleet.now // 60)
            gpus = sum(
                fleet.gpu_power(n, g, noise_state(g.noise, minute)) for g in n.gpus if g.present
            )
            return NodeReading(watts=round(fleet.host_power(n) + gpus, 1), source="simulated")

    def set_limit(self, index: int, watts: float) -> float:
        with self._access() as fleet:
            n = fleet.nodes.get(self._node)
            if n is None:
                raise PowerError(f"no simulated node {self._node!r}")
            if not 0 <= index < n.gpu_count or not n.gpus[index].present:
                raise PowerError(f"GPU {index} is not reachable")
            lo, hi, _ = POWER_LIMITS[n.model]
            if not lo <= watts <= hi:
                raise PowerError(
                    f"{watts:g} W is outside [{lo:g}, {hi:g}] W (NVML: InvalidArgument)"
                )
            return fleet.set_power_limit(self._node, index, watts)
