"""GPU usage of the simulated cluster's tenants, from its jobs (a `UsageSource`).

The simulation forgets a job once it ends, so only the jobs running now are counted: each
from its start to its end or ``until``, whichever comes first, per GPU model of its nodes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from scheduler.simulated.backend import ClusterAccess
from scheduler.simulated.cluster import SimJob, SimulatedCluster
from scheduler.usage import UNKNOWN_MODEL, UsageRead, UsageRecord


def job_records(cluster: SimulatedCluster, job: SimJob, until: datetime) -> list[UsageRecord]:
    """A running job's records, one per GPU model among its nodes; none while it waits."""
    if job.start is None or not job.nodes:
        return []
    models: dict[str, int] = {}
    for name in job.nodes:
        node = cluster.nodes.get(name)
        model = node.model if node is not None and node.model else UNKNOWN_MODEL
        models[model] = models.get(model, 0) + job.gpus_per_node
    start = datetime.fromtimestamp(job.start, UTC)
    end = max(start, min(datetime.fromtimestamp(job.end, UTC), until))
    return [
        UsageRecord(job.tenant, job.pool, model, start, end, gpus)
        for model, gpus in sorted(models.items())
        if gpus > 0
    ]


class SimulatedUsage:
    kind = "simulated"

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access

    def usage(self, since: datetime, until: datetime, tenant: str | None = None) -> UsageRead:
        with self._access() as c:
            jobs = [j for j in c.jobs.values() if tenant is None or j.tenant == tenant]
            records = [r for j in jobs for r in job_records(c, j, until)]
        return UsageRead([r for r in records if r.end > since and r.start < until])
