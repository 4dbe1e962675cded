"""The boundary to workload managers: one protocol; simulated, Slurm and Kubernetes backends."""
