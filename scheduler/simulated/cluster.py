"""Jobs on a simulated cluster: arrivals, placement, completion, drains.

Training jobs take whole nodes (all GPUs, one to eight nodes, hours to a day)
and keep their GPUs near full load; inference jobs take one to eight GPUs of
one node for hours at a load that follows traffic. Arrivals are calibrated
so that each pool runs at about its target utilisation.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice

from scheduler.protocol import DrainMode

TENANTS = ("aurora-labs", "fjord-ai", "helix-bio", "nordlys-ml", "sisu-robotics")
MAX_PENDING_SECONDS = 12 * 3600.0
# How many jobs ended by their node the cluster remembers (scheduler.work's history).
_ENDED_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    # node -> (pool, gpu model, gpu count), in the fleet's order
    nodes: Mapping[str, tuple[str, str, int]]
    # pool -> "training" | "inference": the kind of work that pool runs
    pool_kinds: Mapping[str, str]
    target_utilisation: float = 0.7
    tenants: tuple[str, ...] = TENANTS


@dataclass(slots=True)
class SimJob:
    id: int
    tenant: str
    kind: str
    pool: str
    gpus_per_node: int
    nodes_wanted: int
    duration: float
    submitted: float
    start: float | None = None
    nodes: list[str] = field(default_factory=list)

    @property
    def end(self) -> float:
        return (self.start or 0.0) + self.duration


@dataclass(slots=True)
class SimTenant:
    """A tenant computectl manages here: like a Slurm account with a QOS per pool."""

    name: str
    users: list[str]
    quotas: dict[str, int]  # pool -> GPUs
    max_wall_seconds: float | None = None
    suspended: bool = False


@dataclass(slots=True)
class SimNode:
    name: str
    pool: str
    model: str
    gpus: int
    drain: bool = False
    reason: str = ""


class SimulatedCluster:
    def __init__(self, spec: ClusterSpec, seed: int, now: float, warm: bool = True) -> None:
        self.spec = spec
        self.now = now
        self.rng = random.Random(seed ^ 0x5EED)
        self.nodes = {
            name: SimNode(name, pool, model, gpus)
            for name, (pool, model, gpus) in spec.nodes.items()
        }
        self._pool_nodes: dict[str, list[str]] = {}
        for n in self.nodes.values():
            self._pool_nodes.setdefault(n.pool, []).append(n.name)
        self.jobs: dict[int, SimJob] = {}
        self.next_id = 1
        self.tenants: dict[str, SimTenant] = {}
        self.next_arrival = {pool: now + self._interarrival(pool) for pool in spec.pool_kinds}
        # What changed since whoever persists the cluster last looked (cleared by them).
        self.changed_nodes: set[str] = set()
        self.changed_jobs: set[int] = set()
        self.changed_tenants: set[str] = set()
        # Jobs their node ended (a crash, a drain with ``down``), newest last, with when and
        # where: this process's memory only (the world file keeps running jobs alone).
        self.ended_on_node: deque[tuple[SimJob, float, str]] = deque(maxlen=_ENDED_KEPT)
        if warm:
            self._warm_start()

    # -- workload model ------------------------------------------------------------------

    def _pool_gpus(self, pool: str) -> int:
        return sum(n.gpus for n in self.nodes.values() if n.pool == pool)

    def _mean_gpu_hours(self, pool: str) -> float:
        if self.spec.pool_kinds[pool] == "training":
            return (0.4 * 1 + 0.3 * 2 + 0.2 * 4 + 0.1 * 8) * 8 * 9.0  # nodes * gpus * hours
        return (0.3 * 1 + 0.3 * 2 + 0.3 * 4 + 0.1 * 8) * 4.5

    def _interarrival(self, pool: str) -> float:
        gpus = self._pool_gpus(pool)
        if gpus == 0:
            return math.inf
        per_hour = self.spec.target_utilisation * gpus / self._mean_gpu_hours(pool)
        if per_hour <= 0:
            return math.inf
        return self.rng.expovariate(per_hour / 3600.0)

    def _new_job(self, pool: str, at: float) -> SimJob:
        kind = self.spec.pool_kinds[pool]
        # Managed tenants with a quota in this pool submit the work; else the background mix.
        managed = sorted(t.name for t in self.tenants.values() if t.quotas.get(pool))
        tenant = self.rng.choice(managed or list(self.spec.tenants))
        if kind == "training":
            nodes = self.rng.choices((1, 2, 4, 8), weights=(4, 3, 2, 1))[0]
            gpus, hours = 8, self.rng.uniform(2.0, 16.0)
        else:
            nodes, gpus = 1, self.rng.choices((1, 2, 4, 8), weights=(3, 3, 3, 1))[0]
            hours = self.rng.uniform(1.0, 8.0)
        job = SimJob(
            id=self.next_id,
            tenant=tenant,
            kind=kind,
            pool=pool,
            gpus_per_node=gpus,
            nodes_wanted=nodes,
            duration=hours * 3600.0,
            submitted=at,
        )
        self.next_id += 1
        return job

    def _warm_start(self) -> None:
        """Fill the pools to their target as if the cluster had been running for days."""
        free = self._free()
        # Nodes only fill here: each pool's full nodes at its head are not looked at again
        # (scanning them for each of 2,852 jobs was 0.7 s of a 10,240-node site's start).
        full: dict[str, int] = {}
        for pool in self.spec.pool_kinds:
            total = self._pool_gpus(pool)
            used = self._used(pool)
            for _ in range(4 * max(1, total)):
                if used >= self.spec.target_utilisation * total:
                    break
                job = self._new_job(pool, self.now)
                if self._place(job, free, full):
                    used += job.gpus_per_node * len(job.nodes)
                    elapsed = self.rng.uniform(0.0, job.duration)
                    job.start = self.now - elapsed
                    job.submitted = job.start

    def _tenant_allows(self, job: SimJob) -> bool:
        """The tenant's quota and state, as Slurm's QOS GrpTRES and account hold would."""
        t = self.tenants.get(job.tenant)
        if t is None:
            return True
        if t.suspended:
            return False
        if t.max_wall_seconds is not None and job.duration > t.max_wall_seconds:
            job.duration = t.max_wall_seconds  # the wall time limit ends it early
        held = sum(
            j.gpus_per_node * len(j.nodes)
            for j in self.jobs.values()
            if j.start is not None and j.tenant == t.name and j.pool == job.pool
        )
        return held + job.gpus_per_node * job.nodes_wanted <= t.quotas.get(job.pool, 0)

    def submit(
        self, tenant: str, pool: str, gpus_per_node: int, nodes: int, hours: float
    ) -> SimJob:
        """Submit a job for ``tenant`` now (tests and operators' what-ifs)."""
        job = SimJob(
            id=self.next_id,
            tenant=tenant,
            kind=self.spec.pool_kinds.get(pool, "training"),
            pool=pool,
            gpus_per_node=gpus_per_node,
            nodes_wanted=nodes,
            duration=hours * 3600.0,
            submitted=self.now,
        )
        self.next_id += 1
        if not self._place(job):
            self.jobs[job.id] = job  # pending
            self.changed_jobs.add(job.id)
        return job

    def cancel(self, job_id: int) -> None:
        self.jobs.pop(job_id, None)
        self.changed_jobs.add(job_id)

    def set_tenant(self, tenant: SimTenant) -> None:
        self.tenants[tenant.name] = tenant
        self.changed_tenants.add(tenant.name)

    def drop_tenant(self, name: str) -> None:
        self.tenants.pop(name, None)
        self.changed_tenants.add(name)

    def tenant_jobs(self, tenant: str) -> list[SimJob]:
        return [j for j in self.jobs.values() if j.tenant == tenant]

    def _used(self, pool: str) -> int:
        return sum(
            j.gpus_per_node * len(j.nodes)
            for j in self.jobs.values()
            if j.start is not None and j.pool == pool
        )

    def _free(self) -> dict[str, int]:
        free = {n.name: (0 if n.drain else n.gpus) for n in self.nodes.values()}
        for j in self.jobs.values():
            if j.start is not None:
                for name in j.nodes:
                    if name in free:
                        free[name] = max(0, free[name] - j.gpus_per_node)
        return free

    def _place(
        self, job: SimJob, free: dict[str, int] | None = None, full: dict[str, int] | None = None
    ) -> bool:
        """Start ``job`` if it fits; ``free`` (GPUs free per node) is updated when given.
        With ``full`` (per pool, how many of its first nodes have no GPU free; only while
        nodes fill and none empties), those are skipped and the count kept up."""
        if not self._tenant_allows(job):
            return False
        if free is None:
            free = self._free()
        names = self._pool_nodes.get(job.pool, ())
        head = 0
        if full is not None:
            head = full.get(job.pool, 0)
            while head < len(names) and free[names[head]] <= 0:
                head += 1
            full[job.pool] = head
        fitting = (names[i] for i in range(head, len(names)) if free[names[i]] >= job.gpus_per_node)
        # Training takes the first nodes that fit (stop looking there); inference the best fit.
        fits = list(fitting if job.kind == "inference" else islice(fitting, job.nodes_wanted))
        if len(fits) < job.nodes_wanted:
            return False
        if job.kind == "inference":
            fits.sort(key=lambda name: (free[name], name))  # best fit
        chosen = fits[: job.nodes_wanted]
        for name in chosen:
            free[name] -= job.gpus_per_node
        job.nodes = chosen
        job.start = self.now
        self.jobs[job.id] = job
        self.changed_jobs.add(job.id)
        return True

    # -- time ----------------------------------------------------------------------------

    def advance(self, to: float) -> None:
        pending: list[SimJob] = [j for j in self.jobs.values() if j.start is None]
        while True:
            running_ends = [(j.end, j.id) for j in self.jobs.values() if j.start is not None]
            next_end = min(running_ends)[0] if running_ends else math.inf
            pool, next_arr = min(self.next_arrival.items(), key=lambda kv: (kv[1], kv[0]))
            t = min(next_end, next_arr)
            if t > to:
                break
            self.now = t
            if next_end <= next_arr:
                for end, jid in running_ends:
                    if end <= t:
                        del self.jobs[jid]
                        self.changed_jobs.add(jid)
            else:
                pending.append(self._new_job(pool, t))
                self.next_arrival[pool] = t + self._interarrival(pool)
            pending = self._schedule(pending)
        self.now = to
        self._schedule(pending)

    def _schedule(self, pending: list[SimJob]) -> list[SimJob]:
        waiting: list[SimJob] = []
        for job in pending:
            self.changed_jobs.add(job.id)
            if self.now - job.submitted > MAX_PENDING_SECONDS:
                self.jobs.pop(job.id, None)
                continue
            if not self._place(job):
                job.start = None
                job.nodes = []
                self.jobs[job.id] = job
                waiting.append(job)
        return waiting

    # -- operations ----------------------------------------------------------------------

    def running_on(self, node: str) -> list[SimJob]:
        return [j for j in self.jobs.values() if j.start is not None and node in j.nodes]

    def jobs_by_node(self) -> dict[str, list[SimJob]]:
        """Running jobs per node, in one pass (for reads over the whole cluster)."""
        out: dict[str, list[SimJob]] = {name: [] for name in self.nodes}
        for j in self.jobs.values():
            if j.start is not None:
                for name in j.nodes:
                    out.setdefault(name, []).append(j)
        return out

    def drain(self, node: str, reason: str, mode: DrainMode) -> None:
        n = self.nodes[node]
        self.changed_nodes.add(node)
        n.drain = True
        n.reason = reason
        if mode == "down":
            self.kill_jobs_on(node)

    def resume(self, node: str) -> None:
        n = self.nodes[node]
        self.changed_nodes.add(node)
        n.drain = False
        n.reason = ""

    def kill_jobs_on(self, node: str) -> None:
        """The node's jobs crash (a fatal GPU fault) or are ended (taken down)."""
        for job in self.running_on(node):
            del self.jobs[job.id]
            self.changed_jobs.add(job.id)
            self.ended_on_node.append((job, self.now, node))

    def utilisation(
        self, node: str, minute: int, running: list[SimJob] | None = None
    ) -> list[float]:
        n = self.nodes[node]
        load = [0.0] * n.gpus
        slot = 0
        jobs = self.running_on(node) if running is None else running
        for job in sorted(jobs, key=lambda j: j.id):
            for _ in range(job.gpus_per_node):
                if slot >= n.gpus:
                    break
                if job.kind == "training":
                    u = 0.95 + 0.04 * math.sin(job.id * 7.0 + minute * 0.3 + slot)
                else:
                    u = (
                        0.55
                        + 0.25 * math.sin(job.id * 3.0 + minute / 45.0)
                        + 0.05 * math.sin(minute * 1.3 + slot)
                    )
                load[slot] = max(0.0, min(1.0, u))
                slot += 1
        return load
