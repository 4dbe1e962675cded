"""A simulated workload manager: tenants' training and inference jobs on a simulated fleet."""

from scheduler.simulated.backend import SimulatedWorkloadManager
from scheduler.simulated.cluster import ClusterSpec, SimulatedCluster

__all__ = ["ClusterSpec", "SimulatedCluster", "SimulatedWorkloadManager"]
