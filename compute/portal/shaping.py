"""What a tenant's pages show, shaped from the services: quotas beside allocation, its work
and the nodes it runs on, drains that hit it, how to reach Slurm, and usage.

Nothing here names another tenant: the reads are of this tenant's records, and a drain's
reason (free text an operator may have typed) has other tenants' names taken out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compute.config import PoolSettings
from compute.domain import Event, EventKind
from compute.errors import ComputeError
from compute.runtime import Runtime
from compute.services import fleet
from compute.services.fleet import TenantHolding
from compute.services.usage import tenant_usage
from compute.views import usage_view
from scheduler.slurm.qos import qos_name

# Drain events looked through for a tenant's incidents (newest first).
DRAIN_EVENTS_READ = 500
INCIDENTS_SHOWN = 50
DRAIN_KINDS = (EventKind.DRAIN, EventKind.DRAINED, EventKind.EXTERNAL_DRAIN)
OTHER_TENANT = "[another tenant]"


@dataclass
class QuotaLine:
    pool: str
    gpu_model: str
    quota: int | None  # None: work in a pool it has no quota in (an old quota removed)
    allocated: int


@dataclass
class WorkLine:
    job: str
    state: str
    gpus: int
    nodes: list[str]


@dataclass
class SlurmAccess:
    account: str
    pool: str
    partition: str
    qos: str
    example: str


@dataclass
class TenantPage:
    name: str
    state: str
    quotas: list[QuotaLine]
    allocations_at: str | None
    work: list[WorkLine]
    work_error: str
    incidents: list[dict[str, str]]
    slurm: list[SlurmAccess]
    kube_pools: list[str]
    usage: list[dict[str, Any]] = field(default_factory=list)
    usage_note: str = ""


def tenant_page(rt: Runtime, name: str) -> TenantPage:
    holding = fleet.tenant(rt.store, name)  # NotFoundError for an unknown tenant
    pools = {p.name: p for p in rt.settings.effective_pools}
    work, work_error = _work(rt, holding)
    usage, usage_note = _usage(rt, name)
    quota_pools = [q.pool for q in holding.spec.quotas]
    return TenantPage(
        name=name,
        state=holding.record.state,
        quotas=_quotas(holding, pools),
        allocations_at=holding.allocations_at,
        work=work,
        work_error=work_error,
        incidents=incidents(rt, holding, [t.name for t in rt.store.tenants() if t.name != name]),
        slurm=_slurm(name, [pools[p] for p in quota_pools if p in pools]),
        kube_pools=[p for p in quota_pools if p in pools and pools[p].backend == "kubernetes"],
        usage=usage,
        usage_note=usage_note,
    )


def _quotas(holding: TenantHolding, pools: dict[str, PoolSettings]) -> list[QuotaLine]:
    held = holding.held_by_pool
    lines = [
        QuotaLine(q.pool, q.gpu_model, q.gpus, held.get(q.pool, 0)) for q in holding.spec.quotas
    ]
    quoted = {q.pool for q in holding.spec.quotas}
    for pool in sorted(set(held) - quoted):
        model = pools[pool].gpu_model if pool in pools else ""
        lines.append(QuotaLine(pool, model, None, held[pool]))
    return lines


def _work(rt: Runtime, holding: TenantHolding) -> tuple[list[WorkLine], str]:
    """Its jobs and pods as its backends list them now, with the nodes the last sweep saw
    them on; a backend that cannot answer is said so, not shown as no work."""
    nodes: dict[str, list[str]] = {}
    for a in holding.allocations:
        nodes.setdefault(a.job, []).append(a.node)
    try:
        jobs = rt.tenants.jobs(holding.record.name)
    except ComputeError as exc:
        lines = [WorkLine(job, "running", 0, sorted(set(n))) for job, n in sorted(nodes.items())]
        return lines, f"its backends could not list its work now ({exc}); as of the last sweep"
    lines = [WorkLine(j.id, j.state, j.gpus, sorted(set(nodes.get(j.id, [])))) for j in jobs]
    listed = {j.id for j in jobs}
    lines += [
        WorkLine(job, "running", 0, sorted(set(n)))
        for job, n in sorted(nodes.items())
        if job not in listed
    ]
    return lines, ""


def incidents(rt: Runtime, holding: TenantHolding, others: Sequence[str]) -> list[dict[str, str]]:
    """Drains of nodes its work was on at the last sweep, or that left its pods running
    ("namespace/pod: why", the namespace being the tenant's). The store keeps allocations
    as of the last sweep only, so a drain after its work left the node is not shown."""
    name = holding.record.name
    on = {a.node for a in holding.allocations}
    out: list[dict[str, str]] = []
    for e in rt.store.events(kinds=list(DRAIN_KINDS), limit=DRAIN_EVENTS_READ):
        if e.node in on or _left_its_pods(e, name):
            out.append(
                {
                    "at": e.at.isoformat(timespec="seconds"),
                    "node": e.node,
                    "kind": e.kind,
                    "reason": redact(e.reason, others),
                }
            )
        if len(out) >= INCIDENTS_SHOWN:
            break
    return out


def _left_its_pods(e: Event, tenant: str) -> bool:
    left = e.detail.get("left_running") if isinstance(e.detail, dict) else None
    return isinstance(left, list) and any(
        isinstance(x, str) and x.startswith(f"{tenant}/") for x in left
    )


def redact(text: str, others: Sequence[str]) -> str:
    """``text`` with every other tenant's name replaced (longest first, so a name that
    contains another is taken out whole)."""
    for other in sorted(others, key=len, reverse=True):
        text = text.replace(other, OTHER_TENANT)
    return text


def _slurm(tenant: str, pools: Sequence[PoolSettings]) -> list[SlurmAccess]:
    out = []
    for p in pools:
        if p.backend != "slurm":
            continue
        partition = str(getattr(p, "partition", p.name))
        out.append(
            SlurmAccess(
                account=tenant,
                pool=p.name,
                partition=partition,
                qos=qos_name(tenant, p.name),
                example=f"sbatch -A {tenant} -p {partition} --gres=gpu:1 job.sh",
            )
        )
    return out


def _usage(rt: Runtime, tenant: str) -> tuple[list[dict[str, Any]], str]:
    """GPU-hours per day, pool and model over the last 7 days, and what could not be told."""
    try:
        view = usage_view(tenant_usage(rt, tenant, days=7))
    except ComputeError as exc:
        return [], f"Usage is not available now: {exc}"
    notes = " ".join(f"{n[:1].upper()}{n[1:]}." for n in view["notes"])
    if not view["rows"]:
        notes = f"No GPU-hours recorded in the last 7 days. {notes}".strip()
    return view["rows"], notes
