"""A tenant's QOS in one pool: everything a job of the tenant can hold there (pure).

``qos <name>-<pool>`` (Description ``computectl: tenants in pool <pool>``) bounds the
tenant's jobs in the pool's partition by what it bought, N GPUs, however a job asks:

* ``GrpTRES=gres/gpu=N,gres/gpu:<type>=N``. The untyped ``gres/gpu`` is the limit that
  holds: Slurm (22.05.8, seen on testenv/slurm) checks a pending job's request, which
  carries ``gres/gpu:<type>`` only when the job names the type, but ``gres/gpu`` however
  it asks; once running, the job is charged on both, so a typed-only limit let untyped
  jobs past it (24 used of 16). A pool has one GPU model, so the typed limit is the same
  number, kept so an operator reading the QOS sees the model and drift on either shows.
* ``GrpTRES`` ``cpu`` and ``mem``: N GPUs' share of the pool's nodes
  (`scheduler.slurm.shares`). Without them a job with no GPU, or one GPU and a whole
  node's CPUs, held nodes whose GPUs then served no one (8 GPUs bought, 40 blocked).
* ``MinTRESPerJob=gres/gpu=1``: a job without a GPU does not start (22.05.8: it pends,
  reason ``QOSMinGRES`` or the first Grp limit it also meets). Untyped only: a typed
  minimum would hold back every job that asks for GPUs without naming the model.
* ``MaxWall`` from the spec.

No ``node`` limit: every job holds a GPU on each of its nodes or is refused (22.05:
``--gpus`` below ``-N`` is "Invalid generic resource"), and a whole node held with
``--exclusive`` is charged all its CPUs, which the ``cpu`` limit bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.slurm.fields import format_tres as _tres
from scheduler.slurm.fields import format_wall, memory_mb, parse_tres, parse_wall
from scheduler.slurm.shares import PoolShare

MARK = "computectl: tenant "
# A QOS's marker names its pool, not its tenant (the name does: <tenant>-<pool>), so one
# ``sacctmgr add qos a,b,c ...`` creates the QOS of many tenants in one transaction.
# Before, each named its tenant (``computectl: tenant <name> pool <pool>``): still ours.
POOL_MARK = "computectl: tenants in pool "
# An internal tenant's QOS (the operator's own training): every customer QOS of the pool
# lists it in Preempt, so a customer's job requeues the internal jobs holding its GPUs.
INTERNAL_MARK = "computectl: internal tenants in pool "
# ``sacctmgr show qos`` columns, in order (the free-text Description last: see _rows).
QOS_FIELDS = (
    "Name", "GrpTRES", "MinTRESPerJob", "MaxWall", "Preempt", "PreemptMode", "Description",
)  # fmt: skip
# What an internal tenant's jobs undergo when preempted: back to the queue, not cancelled
# (whatever the cluster's default PreemptMode).
REQUEUE = "requeue"
# Every job in a GPU pool holds at least one GPU.
MIN_TRES = {"gres/gpu": "1"}


def qos_description(pool: str, internal: bool = False) -> str:
    return f"{INTERNAL_MARK if internal else POOL_MARK}{pool}"


def qos_pool(description: str) -> tuple[str, bool] | None:
    """The pool a QOS of ours serves, and whether its tenant is internal (by its marker)."""
    for mark, internal in ((POOL_MARK, False), (INTERNAL_MARK, True)):
        if description.startswith(mark):
            return description.removeprefix(mark), internal
    return None


def qos_owner(qname: str, description: str) -> str | None:
    """The tenant whose QOS ``qname`` is, by computectl's marker; None: not ours."""
    found = qos_pool(description)
    if found is not None:
        pool = found[0]
        name = qname.removesuffix(f"-{pool}")
        return name if pool and name and name != qname else None
    name, sep, pool = description.removeprefix(MARK).rpartition(" pool ")
    if description.startswith(MARK) and sep and qname == qos_name(name, pool):
        return name
    return None


def qos_name(name: str, pool: str) -> str:
    return f"{name}-{pool}"


@dataclass(frozen=True, slots=True)
class Qos:
    name: str
    description: str
    grp_tres: Mapping[str, str] = field(default_factory=dict)
    max_wall_minutes: int | None = None
    min_tres: Mapping[str, str] = field(default_factory=dict)
    preempt: tuple[str, ...] = ()  # the QOS whose jobs this one's may preempt (sorted)
    preempt_mode: str | None = None  # None: the cluster's PreemptMode
    # Why a value is what it is (shown in plan, never compared: Slurm does not keep it).
    note: str = field(default="", compare=False)

    def line(self) -> str:
        parts = [f"GrpTRES={_tres(self.grp_tres) or 'none'}"]
        if self.min_tres:
            parts.append(f"MinTRESPerJob={_tres(self.min_tres)}")
        if self.max_wall_minutes is not None:
            parts.append(f"MaxWall={format_wall(self.max_wall_minutes)}")
        if self.preempt:
            parts.append(f"Preempt={','.join(self.preempt)}")
        if self.preempt_mode is not None:
            parts.append(f"PreemptMode={self.preempt_mode}")
        if self.note:
            parts.append(f"({self.note})")
        return " ".join(parts)

    @property
    def internal(self) -> bool:
        found = qos_pool(self.description)
        return found is not None and found[1]

    def limits(self) -> tuple[object, ...]:
        """What Slurm enforces (and whom for: internal QOS are preempted): a difference
        is drift."""
        return (
            self.grp_tres, self.min_tres, self.max_wall_minutes, self.preempt,
            self.preempt_mode, self.internal,
        )  # fmt: skip


def pool_qos(
    tenant: str,
    pool: str,
    gpus: int,
    gres_type: str,
    share: PoolShare,
    max_wall_minutes: int | None,
    internal: bool = False,
    preempt: Sequence[str] = (),
) -> Qos:
    """The QOS a tenant with ``gpus`` GPUs of type ``gres_type`` needs in ``pool``: an
    internal tenant's is requeued when preempted; a customer's preempts ``preempt`` (the
    pool's internal tenants' QOS)."""
    return Qos(
        qos_name(tenant, pool),
        qos_description(pool, internal),
        {"gres/gpu": str(gpus), f"gres/gpu:{gres_type}": str(gpus), **share.limits(gpus)},
        max_wall_minutes,
        dict(MIN_TRES),
        () if internal else tuple(sorted(preempt)),
        REQUEUE if internal else None,
        share.note,
    )


def read_qos(row: Sequence[str]) -> Qos:
    """One `QOS_FIELDS` row. sacctmgr prints memory in units (``mem=62.50G``): read as MB."""
    name, grp_tres, min_tres, max_wall, preempt, mode, description = row
    grp = parse_tres(grp_tres)
    if "mem" in grp:
        grp["mem"] = memory_mb(grp["mem"])
    return Qos(
        name, description, grp, parse_wall(max_wall), parse_tres(min_tres),
        tuple(sorted(filter(None, preempt.split(",")))),
        None if mode.lower() in ("", "cluster") else mode.lower(),
    )  # fmt: skip


def add_args(q: Qos) -> tuple[str, ...]:
    """``sacctmgr -i`` arguments that create ``q``."""
    args = ["add", "qos", q.name, f"Description={q.description}"]
    if q.grp_tres:
        args.append(f"GrpTRES={_tres(q.grp_tres)}")
    if q.min_tres:
        args.append(f"MinTRESPerJob={_tres(q.min_tres)}")
    if q.max_wall_minutes is not None:
        args.append(f"MaxWall={q.max_wall_minutes}")
    if q.preempt:
        args.append(f"Preempt={','.join(q.preempt)}")
    if q.preempt_mode is not None:
        args.append(f"PreemptMode={q.preempt_mode}")
    return tuple(args)


def modify_args(old: Qos, q: Qos) -> tuple[str, ...]:
    """``sacctmgr -i`` arguments that turn ``old`` into ``q`` (a limit no longer wanted is
    cleared with -1, sacctmgr's "no limit")."""
    sets = [f"MaxWall={q.max_wall_minutes if q.max_wall_minutes is not None else -1}"]
    if old.grp_tres != q.grp_tres:
        sets.append(f"GrpTRES={_tres(cleared(old.grp_tres, q.grp_tres))}")
    if old.min_tres != q.min_tres:
        sets.append(f"MinTRESPerJob={_tres(cleared(old.min_tres, q.min_tres))}")
    if old.preempt != q.preempt:
        sets.append(f"Preempt={','.join(q.preempt) or ''}")
    if old.preempt_mode != q.preempt_mode:
        sets.append(f"PreemptMode={q.preempt_mode or 'cluster'}")
    if old.internal != q.internal:
        sets.append(f"Description={q.description}")
    return ("modify", "qos", "where", f"name={q.name}", "set", *sets)


def cleared(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """New TRES values, with -1 (no limit) for keys that are no longer limited."""
    return {**{k: "-1" for k in old if k not in new}, **new}
