"""Slurm users whose tenant associations go: their DefaultAccount must not point at nothing.

Slurm creates a user record the first time an association names the user, with the
DefaultAccount of that association's account; ``sbatch`` without ``-A`` charges that
account. When a tenant is deleted, or a user leaves it, and the tenant's account is the
user's DefaultAccount, Slurm 22.05 clears it (``show user`` prints an empty default) and
every ``sbatch`` without ``-A`` fails. So before the associations go, the DefaultAccount
moves to another account the user still has an association in (one without a partition
first: it serves every partition; then by name).

A user with no association left is deleted by sacctmgr itself, with its last association
("Deleting users (No Associations)"): a user that computectl's association created only
for this tenant goes with it, and nothing else of the user's is touched. A user whose
default is someone else's account keeps it.

Pure functions here; `scheduler.slurm.tenants` reads the rows and runs the steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scheduler.tenants import Change, ChangeKind

# ``sacctmgr -P -n show user withassoc format=<USER_FIELDS> where name=a,b``: one row per
# association, and one row with empty Account/Partition for a user without any.
USER_FIELDS = ("User", "DefaultAccount", "Account", "Partition")


@dataclass(frozen=True, slots=True)
class SlurmUser:
    name: str
    default_account: str
    associations: frozenset[tuple[str, str]]  # (account, partition); "" = every partition


def read_users(rows: Sequence[Sequence[str]]) -> dict[str, SlurmUser]:
    """Rows of `USER_FIELDS` → user name → `SlurmUser`."""
    defaults: dict[str, str] = {}
    assocs: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        if len(row) < len(USER_FIELDS):
            continue
        user, default, account, partition = (c.strip() for c in row[: len(USER_FIELDS)])
        if not user:
            continue
        defaults.setdefault(user, default)
        found = assocs.setdefault(user, set())
        if account:
            found.add((account, partition))
    return {u: SlurmUser(u, defaults[u], frozenset(assocs[u])) for u in defaults}


def leaving(live: Iterable[tuple[str, str]], wanted: Iterable[tuple[str, str]]) -> set[str]:
    """Users with an association (keyed (user, partition)) now but none wanted."""
    return {u for u, _ in live} - {u for u, _ in wanted}


def default_moves(
    account: str, users: Mapping[str, SlurmUser], gone: Iterable[str]
) -> list[tuple[Change, tuple[str, ...]]]:
    """For each user in ``gone`` (leaving ``account``) whose DefaultAccount it is and who
    keeps another account: the change and the sacctmgr arguments that move the default."""
    out: list[tuple[Change, tuple[str, ...]]] = []
    for name in sorted(gone):
        user = users.get(name)
        if user is None or user.default_account != account:
            continue  # another default: still valid, and not ours to change
        others = sorted({(bool(part), acct) for acct, part in user.associations if acct != account})
        if not others:
            continue  # sacctmgr deletes the user with its last association
        new = others[0][1]
        out.append(
            (
                Change(
                    ChangeKind.UPDATE, f"user {name}", f"DefaultAccount={account}",
                    f"DefaultAccount={new}",
                ),
                ("modify", "user", "where", f"name={name}", "set", f"DefaultAccount={new}"),
            )
        )  # fmt: skip
    return out
