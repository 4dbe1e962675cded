"""The embedded default: a simulated datacenter wired to the control plane's seams."""

from compute.simulation.datacenter import SimulatedDatacenter

__all__ = ["SimulatedDatacenter"]
