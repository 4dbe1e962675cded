"""A simulated GPU fleet: hardware, telemetry and faults, standing in where there is no GPU."""

from health.simulated.faults import FAULTS, FaultKind, FaultSpec
from health.simulated.fleet import FleetSpec, SimulatedFleet
from health.simulated.hardware import SimulatedNode
from health.simulated.probe import SimulatedProbe
from health.simulated.telemetry import SimulatedTelemetry

__all__ = [
    "FAULTS",
    "FaultKind",
    "FaultSpec",
    "FleetSpec",
    "SimulatedFleet",
    "SimulatedNode",
    "SimulatedProbe",
    "SimulatedTelemetry",
]
