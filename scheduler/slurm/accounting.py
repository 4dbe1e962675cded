"""Tenants as Slurm accounting objects: what a spec asks for, what sacctmgr shows, the diff.

One tenant is one account tree (pure functions here; `scheduler.slurm.tenants` runs them):

* ``account <name>`` under root, Description ``computectl: tenant <name>`` — the
  ownership marker: an account without it is never touched. It carries the limits
  that span the tenant's pools: the GPU-hour budget (``GrpTRESMins=gres/gpu=<min>``)
  and, while suspended, ``GrpSubmitJobs=0 GrpJobs=0``.
* ``qos <name>-<pool>`` per pool of this cluster (`scheduler.slurm.qos`): everything the
  tenant's jobs may hold in the pool, in proportion to the GPUs bought — GPUs however a
  job asks, N GPUs' share of the nodes' CPUs and memory, at least one GPU per job — and
  ``MaxWall``. A job is charged to ONE QOS, so the per-pool quotas need one QOS each; the
  tenant-wide budget cannot live on them (each pool would get the whole budget) and sits
  on the account.
* ``association <user>@<name>/<partition>`` per user and pool: a partition-level user
  association whose only (and default) QOS is the pool's QOS. A job of the tenant in
  a partition it did not buy finds no association and is rejected; ``--qos=normal``
  is rejected too, and so is another pool's QOS of the same tenant (``--qos=<name>-<other
  pool>``: not in this partition's association), so the quota cannot be side-stepped.
* Users leaving the tenant keep a usable DefaultAccount (`scheduler.slurm.users`).

Each object is one `Change` whose before/after is one line in sacctmgr's own words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.errors import InvalidRequest
from scheduler.slurm import qos as slurm_qos
from scheduler.slurm.fields import format_tres as _tres
from scheduler.slurm.fields import parse_tres
from scheduler.slurm.parse import GPU_MODELS
from scheduler.slurm.qos import MARK as MARK  # computectl's marker, in one place
from scheduler.slurm.qos import QOS_FIELDS as QOS_FIELDS  # the readers' columns, in one place
from scheduler.slurm.qos import Qos, qos_owner
from scheduler.slurm.shares import PoolShare
from scheduler.tenants import Change, ChangeKind, TenantSpec

ORGANIZATION = "computectl"

# The sacctmgr/sacct columns each reader expects, in order (free text last: see _rows).
ACCOUNT_FIELDS = ("Account", "Description")
# ``show account withassoc``: the account's associations (its own row has no User) and,
# on every row, the account's Description — the whole tree in one sacctmgr call.
TREE_FIELDS = (
    "Account", "User", "Partition", "QOS", "DefaultQOS", "GrpTRESMins", "GrpJobs", "GrpSubmit",
    "Description",
)  # fmt: skip

_GRES_TYPES = {model: kind for kind, model in GPU_MODELS.items()}


def account_description(name: str) -> str:
    return f"{MARK}{name}"


def gres_type(gpu_model: str) -> str:
    """computectl's GPU model → the GRES type gres.conf names it (H100-SXM → h100)."""
    kind = _GRES_TYPES.get(gpu_model)
    if kind is None:
        raise InvalidRequest(
            f"no Slurm GRES type known for GPU model {gpu_model!r} "
            f"(known: {', '.join(sorted(_GRES_TYPES))})"
        )
    return kind


# -- the objects ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    description: str
    grp_tres_mins: Mapping[str, str] = field(default_factory=dict)
    suspended: bool = False

    def line(self) -> str:
        parts = [f"Description='{self.description}'"]
        if self.grp_tres_mins:
            parts.append(f"GrpTRESMins={_tres(self.grp_tres_mins)}")
        if self.suspended:
            parts.append("GrpSubmitJobs=0 GrpJobs=0")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Association:
    user: str
    account: str
    partition: str
    qos: tuple[str, ...]
    default_qos: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.user, self.partition)

    @property
    def target(self) -> str:
        return f"association {self.user}@{self.account}/{self.partition}"

    def line(self) -> str:
        return f"QOS={','.join(self.qos) or 'none'} DefaultQOS={self.default_qos or 'none'}"


@dataclass(frozen=True, slots=True)
class TenantState:
    """A tenant's objects: wanted (from the spec) or live (computectl's own only)."""

    name: str
    account: Account | None = None
    qos: Mapping[str, Qos] = field(default_factory=dict)
    associations: Mapping[tuple[str, str], Association] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """One change and the sacctmgr arguments (after ``-i``) that make it."""

    change: Change
    args: tuple[str, ...]


# -- what the spec asks for ----------------------------------------------------------------------


def desired(
    spec: TenantSpec,
    partitions: Mapping[str, str],
    shares: Mapping[str, PoolShare],
    internal_qos: Mapping[str, Iterable[str]] | None = None,
) -> TenantState:
    """The objects for ``spec``; ``partitions`` maps pool → Slurm partition (this cluster's),
    ``shares`` pool → its per-GPU share of CPUs and memory (`scheduler.slurm.shares`),
    ``internal_qos`` pool → the internal tenants' QOS there (a customer's QOS preempts
    them; `internal_by_pool`)."""
    internal_qos = internal_qos or {}
    account = Account(
        spec.name,
        account_description(spec.name),
        {"gres/gpu": str(round(spec.gpu_hours_budget * 60))}
        if spec.gpu_hours_budget is not None
        else {},
        spec.suspended,
    )
    qos: dict[str, Qos] = {}
    assocs: dict[tuple[str, str], Association] = {}
    for quota in spec.quotas:
        partition = partitions.get(quota.pool)
        if partition is None:
            raise InvalidRequest(f"pool {quota.pool} is not a partition of this Slurm cluster")
        share = shares.get(quota.pool)
        if share is None:
            raise InvalidRequest(f"no CPU and memory share known for pool {quota.pool}")
        preempt = [] if spec.internal else list(internal_qos.get(quota.pool, ()))
        q = slurm_qos.pool_qos(
            spec.name, quota.pool, quota.gpus, gres_type(quota.gpu_model), share,
            spec.max_wall_time_minutes, spec.internal, preempt,
        )  # fmt: skip
        qos[q.name] = q
        for user in spec.users:
            a = Association(user, spec.name, partition, (q.name,), q.name)
            assocs[a.key] = a
    return TenantState(spec.name, account, qos, assocs)


# -- what sacctmgr shows -------------------------------------------------------------------------


def internal_by_pool(
    qos: Iterable[Sequence[str]], specs: Iterable[TenantSpec] = ()
) -> dict[str, list[str]]:
    """Pool → the internal tenants' QOS there: those live (`QOS_FIELDS` rows), except of
    tenants in ``specs`` (what they ask for replaces them), and those ``specs`` ask for."""
    given = {s.name: s for s in specs}
    out: dict[str, set[str]] = {}
    for row in qos:
        qname, description = row[0], row[-1]
        found = slurm_qos.qos_pool(description)
        owner = qos_owner(qname, description)
        if found is not None and found[1] and owner is not None and owner not in given:
            out.setdefault(found[0], set()).add(qname)
    for spec in given.values():
        if spec.internal:
            for quota in spec.quotas:
                out.setdefault(quota.pool, set()).add(slurm_qos.qos_name(spec.name, quota.pool))
    return {pool: sorted(names) for pool, names in out.items()}


def managed_names(accounts: Sequence[Sequence[str]], qos: Sequence[Sequence[str]]) -> set[str]:
    """Tenants with any object of ours: accounts (`ACCOUNT_FIELDS` rows) and QOS
    (`QOS_FIELDS` rows) carrying our marker. A QOS alone is what an apply cut short after
    its first step leaves, and it must still be found to be deleted."""
    names = {a for a, desc, *_ in accounts if desc == account_description(a)}
    for qname, *_, desc in qos:
        owner = qos_owner(qname, desc)
        if owner is not None:
            names.add(owner)
    return names


def read_state(
    name: str,
    tree: Sequence[Sequence[str]],
    qos: Sequence[Sequence[str]],
    partitions: Iterable[str],
    wanted_qos: Iterable[str] = (),
) -> tuple[TenantState, list[str]]:
    """The live objects of tenant ``name`` that are computectl's, and the names of foreign
    objects that block it (an account or QOS of the same name without our marker).

    ``tree``/``qos`` are the rows of `TREE_FIELDS` and `QOS_FIELDS`; associations outside
    ``partitions`` (this cluster's pools) are not ours; ``wanted_qos`` are the QOS names
    the spec needs (a foreign one of those blocks it).
    """
    foreign: list[str] = []
    account: Account | None = None
    rows = [r for r in tree if r[0] == name]
    own = next((r for r in rows if not r[1]), None)  # the account's own association
    if own is not None and own[8] != account_description(name):
        foreign.append(f"account {name} (Description '{own[8]}')")
    elif own is not None:
        account = Account(
            name, own[8], parse_tres(own[5]), suspended=own[6] == "0" and own[7] == "0"
        )
    ours: dict[str, Qos] = {}
    wanted = set(wanted_qos)
    for row in qos:
        qname, description = row[0], row[-1]
        if qos_owner(qname, description) == name:
            ours[qname] = slurm_qos.read_qos(row)
        elif qname in wanted:
            foreign.append(f"qos {qname} (Description '{description}')")
    mine = set(partitions)
    associations: dict[tuple[str, str], Association] = {}
    if account is not None:
        for _acct, user, partition, qos_list, default_qos, *_ in rows:
            if user and partition in mine:
                a = Association(
                    user, name, partition, tuple(sorted(filter(None, qos_list.split(",")))),
                    default_qos,
                )  # fmt: skip
                associations[a.key] = a
    return TenantState(name, account, ours, associations), foreign


# -- the difference, as sacctmgr steps -----------------------------------------------------------


def steps(
    live: TenantState,
    want: TenantState | None,
    users: Sequence[tuple[Change, tuple[str, ...]]] = (),
) -> list[Step]:
    """What turns ``live`` into ``want`` (None: the tenant goes), in an order sacctmgr
    accepts: QOS before the associations that use them, associations before their
    account, QOS last when they go (sacctmgr refuses to delete a default QOS in use).
    ``users``: DefaultAccount moves of users leaving, made before their associations go."""
    name = live.name
    want_qos = want.qos if want else {}
    want_assocs = want.associations if want else {}
    out: list[Step] = []
    for qname, q in sorted(want_qos.items()):
        old = live.qos.get(qname)
        if old is None:
            out.append(Step(_create(f"qos {qname}", q.line()), slurm_qos.add_args(q)))
        elif old.limits() != q.limits():
            out.append(
                Step(_update(f"qos {qname}", old.line(), q.line()), slurm_qos.modify_args(old, q))
            )
    if want is not None and want.account is not None:
        acct, old_acct = want.account, live.account
        if old_acct is None:
            out.append(Step(_create(f"account {name}", acct.line()), _add_account(acct)))
        elif (old_acct.grp_tres_mins, old_acct.suspended) != (acct.grp_tres_mins, acct.suspended):
            out.append(
                Step(
                    _update(f"account {name}", old_acct.line(), acct.line()),
                    _modify_account(old_acct, acct),
                )
            )
    out += [Step(change, args) for change, args in users]
    for key, a in sorted(live.associations.items()):
        if key not in want_assocs:
            out.append(
                Step(
                    Change(ChangeKind.DELETE, a.target, a.line(), ""),
                    ("delete", "user", *_where(a)),
                )
            )
    for key, a in sorted(want_assocs.items()):
        old_a = live.associations.get(key)
        if old_a is None:
            out.append(
                Step(
                    _create(a.target, a.line()),
                    (
                        "add",
                        "user",
                        a.user,
                        f"account={name}",
                        f"partition={a.partition}",
                        *_qos(a),
                    ),
                )
            )
        elif (old_a.qos, old_a.default_qos) != (a.qos, a.default_qos):
            out.append(
                Step(
                    _update(a.target, old_a.line(), a.line()),
                    ("modify", "user", *_where(a), "set", *_qos(a)),
                )
            )
    if want is None and live.account is not None:
        out.append(
            Step(
                Change(ChangeKind.DELETE, f"account {name}", live.account.line(), ""),
                ("delete", "account", "where", f"name={name}"),
            )
        )
    for qname, q in sorted(live.qos.items()):
        if qname not in want_qos:
            out.append(
                Step(
                    Change(ChangeKind.DELETE, f"qos {qname}", q.line(), ""),
                    ("delete", "qos", "where", f"name={qname}"),
                )
            )
    return out


def _where(a: Association) -> tuple[str, ...]:
    return ("where", f"name={a.user}", f"account={a.account}", f"partition={a.partition}")


def _qos(a: Association) -> tuple[str, ...]:
    return (f"qos={','.join(a.qos)}", f"defaultqos={a.default_qos}")


def _create(target: str, after: str) -> Change:
    return Change(ChangeKind.CREATE, target, "", after)


def _update(target: str, before: str, after: str) -> Change:
    return Change(ChangeKind.UPDATE, target, before, after)


def _hold(suspended: bool) -> list[str]:
    # GrpSubmitJobs=0: sbatch is refused (AssocGrpSubmitJobsLimit); GrpJobs=0: what was
    # already queued stays pending (AssocGrpJobsLimit). Running jobs are not affected.
    value = "0" if suspended else "-1"
    return [f"GrpSubmitJobs={value}", f"GrpJobs={value}"]


def _add_account(a: Account) -> tuple[str, ...]:
    args = ["add", "account", a.name, f"Description={a.description}"]
    args.append(f"Organization={ORGANIZATION}")
    if a.grp_tres_mins:
        args.append(f"GrpTRESMins={_tres(a.grp_tres_mins)}")
    if a.suspended:
        args += _hold(True)
    return tuple(args)


def _modify_account(old: Account, a: Account) -> tuple[str, ...]:
    sets = _hold(a.suspended)
    if old.grp_tres_mins != a.grp_tres_mins:
        sets.append(f"GrpTRESMins={_tres(slurm_qos.cleared(old.grp_tres_mins, a.grp_tres_mins))}")
    return ("modify", "account", "where", f"name={a.name}", "set", *sets)
