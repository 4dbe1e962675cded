"""Many tenants' sacctmgr steps as few transactions as Slurm allows (pure).

Every sacctmgr command is one slurmdbd transaction, and a transaction costs about the
same whatever it holds (Slurm 22.05.8 on testenv/slurm: 200 ``add qos`` commands in one
sacctmgr session 75 s; one ``add qos`` of 200 names 0.55 s). So the steps of all tenants
become:

* ``add qos n1,n2,...`` for QOS whose settings are the same (a QOS's description names its
  pool, not its tenant, so the QOS of every tenant with the same quota in a pool are one
  command);
* ``modify <entity> where name=a,b,... set ...`` for the same change of many objects;
* one ``sacctmgr load`` of a generated file for every new account and association.
  ``load`` adds accounts and user associations with their limits in one transaction and
  rolls all back on an error, but it cannot create or change a QOS (the flat file has none),
  delete anything, or change an association's QOS list consistently (seen: it replaced
  QOS and left DefaultQOS pointing at the old one), so those stay commands.

Deletions are not batched: `SlurmTenants` runs a tenant that loses objects on its own, so
a job that still uses one (sacctmgr's "Job(s) active") holds back that tenant alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.errors import InvalidRequest
from scheduler.slurm.accounting import Step
from scheduler.tenants import Change

# Tenants one transaction holds at most. Each ``sacctmgr load`` first reads the cluster's
# whole association tree, so smaller loads cost more in all: 1,000 tenants in five loads of
# 200 took 4.3 times one load of 1,000 (benchmarks/RESULTS.md). A write's timeout grows
# with its size instead (`SlurmTenants`).
CHUNK = 1000

# The load file's values are quoted ('...'); a quote or a line break would end one early.
# Every value computectl writes is a validated name, a description or a TRES list.
_FORBIDDEN = frozenset("'\"\n\r")


@dataclass
class Write:
    """One sacctmgr transaction: ``args`` after ``-i`` (for a ``load``, ``load`` holds the
    file's text and the runner adds ``file=``) and the tenants' changes it makes."""

    args: tuple[str, ...]
    changes: list[tuple[str, Change]] = field(default_factory=list)
    load: str = ""


@dataclass
class _Group:
    """Steps that differ only in the object's name: one command for all their names."""

    head: tuple[str, ...]  # the args before the names
    tail: tuple[str, ...]  # and after
    prefix: str = ""  # "name=" in a where clause
    names: dict[str, None] = field(default_factory=dict)
    changes: list[tuple[str, Change]] = field(default_factory=list)

    def writes(self) -> list[Write]:
        """One write per `CHUNK` names, each with its names' changes."""
        names = list(self.names)
        out = []
        for i in range(0, len(names), CHUNK):
            chunk = set(names[i : i + CHUNK])
            listed = f"{self.prefix}{','.join(names[i : i + CHUNK])}"
            changes = [(t, c) for t, c in self.changes if self._name(c) in chunk]
            out.append(Write((*self.head, listed, *self.tail), changes))
        return out

    @staticmethod
    def _name(change: Change) -> str:
        # "qos <name>", "account <name>", "association <user>@<account>/<partition>",
        # "user <name>": the name the command lists
        target = change.target.split(" ", 1)[1]
        return target.split("@", 1)[0]


def writes(steps: Mapping[str, Sequence[Step]], cluster: str) -> list[Write]:
    """The transactions that make every tenant's ``steps`` (none deleting), in the order
    sacctmgr accepts: QOS, then new accounts and associations, then changes to others."""
    groups: dict[tuple[str, ...], _Group] = {}
    accounts: list[tuple[str, Step]] = []
    users: list[tuple[str, Step]] = []
    for tenant, tenant_steps in steps.items():
        for s in tenant_steps:
            verb, entity = s.args[0], s.args[1]
            if (verb, entity) == ("add", "account"):
                accounts.append((tenant, s))
                continue
            if (verb, entity) == ("add", "user"):
                users.append((tenant, s))
                continue
            if (verb, entity) == ("add", "qos"):
                key = (*s.args[:2], *s.args[3:])
                g = groups.setdefault(key, _Group(s.args[:2], s.args[3:]))
                name = s.args[2]
            elif verb == "modify" and len(s.args) > 4 and s.args[2] == "where":
                if not s.args[3].startswith("name="):
                    raise InvalidRequest(f"cannot batch sacctmgr {' '.join(s.args[:4])}")
                # The other where terms (an association's account and partition) stay in
                # the key, so a list of names matches exactly those objects.
                key = (*s.args[:3], *s.args[4:])
                g = groups.setdefault(key, _Group(s.args[:3], s.args[4:], "name="))
                name = s.args[3].removeprefix("name=")
            else:
                raise InvalidRequest(f"cannot batch sacctmgr {' '.join(s.args[:2])}")
            g.names[name] = None
            g.changes.append((tenant, s.change))
    # A QOS that preempts others names them: those (internal tenants' QOS) come first.
    qos = sorted(
        (w for g in groups.values() if g.head[1] == "qos" for w in g.writes()),
        key=lambda w: w.args[0] != "add" or any(a.startswith("Preempt=") for a in w.args),
    )
    others = [w for g in groups.values() if g.head[1] != "qos" for w in g.writes()]
    tenants = list(dict.fromkeys(t for t, _s in accounts + users))
    for i in range(0, len(tenants), CHUNK):
        chunk = set(tenants[i : i + CHUNK])
        qos.append(
            _load(
                [(t, s) for t, s in accounts if t in chunk],
                [(t, s) for t, s in users if t in chunk],
                cluster,
            )
        )
    return qos + others


def _load(accounts: list[tuple[str, Step]], users: list[tuple[str, Step]], cluster: str) -> Write:
    """A flat file (``sacctmgr dump``'s format) with the new accounts under root and the
    new associations under their accounts. A bare cluster line changes nothing of the
    cluster's own association."""
    lines = [f"Cluster - {_quoted(cluster)}"]
    changes: list[tuple[str, Change]] = []
    if accounts:
        lines.append("Parent - 'root'")
    for tenant, s in accounts:
        # ("add", "account", name, "Key=value", ...)
        specs = [_spec(opt) for opt in s.args[3:]]
        lines.append(":".join([f"Account - {_quoted(s.args[2])}", *specs]))
        changes.append((tenant, s.change))
    by_account: dict[str, list[tuple[str, Step]]] = {}
    for tenant, s in users:
        opts = dict(o.split("=", 1) for o in s.args[3:])
        by_account.setdefault(opts["account"], []).append((tenant, s))
    for account, items in by_account.items():
        lines.append(f"Parent - {_quoted(account)}")
        for tenant, s in items:
            opts = dict(o.split("=", 1) for o in s.args[3:])
            lines.append(
                ":".join(
                    [
                        f"User - {_quoted(s.args[2])}",
                        f"Partition={_quoted(opts['partition'])}",
                        f"QOS={_quoted(opts['qos'])}",
                        f"DefaultQOS={_quoted(opts['defaultqos'])}",
                    ]
                )
            )
            changes.append((tenant, s.change))
    return Write(("load",), changes, "\n".join(lines) + "\n")


def _spec(option: str) -> str:
    key, _sep, value = option.partition("=")
    return f"{key}={_quoted(value)}"


def _quoted(value: str) -> str:
    if _FORBIDDEN & set(value):
        raise InvalidRequest(f"cannot write {value!r} to a sacctmgr load file")
    return f"'{value}'"
