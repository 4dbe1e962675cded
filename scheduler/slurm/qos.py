"""A tenant's QOS in one pool: everything a job of the tenant can hold there (pure).

``qos <name>-<pool>`` (Description ``computectl: tenant <name> pool <pool>``) bounds the
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
# ``sacctmgr show qos`` columns, in order (the free-text Description last: see _rows).
QOS_FIELDS = ("Name", "GrpTRES", "MinTRESPerJob", "MaxWall", "Description")
# Every job in a GPU pool holds at least one GPU.
MIN_TRES = {"gres/gpu": "1"}


def qos_description(name: str, pool: str) -> str:
    return f"{MARK}{name} pool {pool}"


def qos_name(name: str, pool: str) -> str:
    return f"{name}-{pool}"


@dataclass(frozen=True, slots=True)
class Qos:
    name: str
    description: str
    grp_tres: Mapping[str, str] = field(default_factory=dict)
    max_wall_minutes: int | None = None
    min_tres: Mapping[str, str] = field(default_factory=dict)
    # Why a value is what it is (shown in plan, never compared: Slurm does not keep it).
    note: str = field(default="", compare=False)

    def line(self) -> str:
        parts = [f"GrpTRES={_tres(self.grp_tres) or 'none'}"]
        if self.min_tres:
            parts.append(f"MinTRESPerJob={_tres(self.min_tres)}")
        if self.max_wall_minutes is not None:
            parts.append(f"MaxWall={format_wall(self.max_wall_minutes)}")
        if self.note:
            parts.append(f"({self.note})")
        return " ".join(parts)

    def limits(self) -> tuple[object, ...]:
        """What Slurm enforces: a difference is drift."""
        return (self.grp_tres, self.min_tres, self.max_wall_minutes)


def pool_qos(
    tenant: str,
    pool: str,
    gpus: int,
    gres_type: str,
    share: PoolShare,
    max_wall_minutes: int | None,
) -> Qos:
    """The QOS a tenant with ``gpus`` GPUs of type ``gres_type`` needs in ``pool``."""
    return Qos(
        qos_name(tenant, pool),
        qos_description(tenant, pool),
        {"gres/gpu": str(gpus), f"gres/gpu:{gres_type}": str(gpus), **share.limits(gpus)},
        max_wall_minutes,
        dict(MIN_TRES),
        share.note,
    )


def read_qos(row: Sequence[str]) -> Qos:
    """One `QOS_FIELDS` row. sacctmgr prints memory in units (``mem=62.50G``): read as MB."""
    name, grp_tres, min_tres, max_wall, description = row
    grp = parse_tres(grp_tres)
    if "mem" in grp:
        grp["mem"] = memory_mb(grp["mem"])
    return Qos(name, description, grp, parse_wall(max_wall), parse_tres(min_tres))


def add_args(q: Qos) -> tuple[str, ...]:
    """``sacctmgr -i`` arguments that create ``q``."""
    args = ["add", "qos", q.name, f"Description={q.description}"]
    if q.grp_tres:
        args.append(f"GrpTRES={_tres(q.grp_tres)}")
    if q.min_tres:
        args.append(f"MinTRESPerJob={_tres(q.min_tres)}")
    if q.max_wall_minutes is not None:
        args.append(f"MaxWall={q.max_wall_minutes}")
    return tuple(args)


def modify_args(old: Qos, q: Qos) -> tuple[str, ...]:
    """``sacctmgr -i`` arguments that turn ``old`` into ``q`` (a limit no longer wanted is
    cleared with -1, sacctmgr's "no limit")."""
    sets = [f"MaxWall={q.max_wall_minutes if q.max_wall_minutes is not None else -1}"]
    if old.grp_tres != q.grp_tres:
        sets.append(f"GrpTRES={_tres(cleared(old.grp_tres, q.grp_tres))}")
    if old.min_tres != q.min_tres:
        sets.append(f"MinTRESPerJob={_tres(cleared(old.min_tres, q.min_tres))}")
    return ("modify", "qos", "where", f"name={q.name}", "set", *sets)


def cleared(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """New TRES values, with -1 (no limit) for keys that are no longer limited."""
    return {**{k: "-1" for k in old if k not in new}, **new}
