"""A simulated workload manager: tenants' training and inference jobs on a simulated fleet."""

from scheduler.simulated.backend import SimulatedWorkloadManager
from scheduler.simulated.cluster import ClusterSpec, SimulatedCluster
from scheduler.simulated.tenants import SimulatedTenants
from scheduler.simulated.usage import SimulatedUsage

__all__ = [
    "ClusterSpec",
    "SimulatedCluster",
    "SimulatedTenants",
    "SimulatedUsage",
    "SimulatedWorkloadManager",
]
