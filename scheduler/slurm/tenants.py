"""The TenantBackend protocol over a real Slurm cluster: one tenant = one account tree.

The objects and their diff are in `scheduler.slurm.accounting`; this module reads the
live state with ``sacctmgr -P -n show``, applies the steps with ``sacctmgr -i``, and
ends a tenant's work with ``scancel`` — all through `SlurmCommands`.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scheduler.errors import Conflict, InvalidRequest, PermissionDenied, SchedulerError, Unreachable
from scheduler.protocol import JobInfo
from scheduler.slurm import accounting as acc
from scheduler.slurm import shares, usage
from scheduler.slurm import tenants_batch as batch
from scheduler.slurm import users as slurm_users
from scheduler.slurm.qos import qos_owner
from scheduler.tenants import (
    Change,
    ChangeKind,
    Interrupted,
    Outcome,
    TenantBusy,
    TenantSpec,
)

# How long delete(force=True) waits for cancelled jobs to leave the queue (after the grace):
# slurmctld kills at once, but a job is listed until its epilog has run.
_CANCEL_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.5
_JOBS_ACTIVE = "Job(s) active"  # sacctmgr's refusal to delete what running jobs use
_LOADED = {("add", "account"), ("add", "user")}  # made by `sacctmgr load`


class AccountingDriver(Protocol):
    """What the tenant backend needs of Slurm's tools (`SlurmCommands` has it)."""

    def sacctmgr_show(self, entity: str, fields: tuple[str, ...], *where: str) -> list[list[str]]:
        """Rows of ``sacctmgr -P -n show``."""

    def sacctmgr(self, *args: str) -> str:
        """``sacctmgr -i <args>``."""

    def squeue_json(self) -> dict[str, object]: ...

    def sinfo_json(self) -> dict[str, Any]:
        """Every node (the partitions' CPUs, memory and GPUs size a tenant's share)."""

    def scancel(self, *args: str) -> None: ...

    def run(self, tool: str, *args: str) -> str:
        """Any Slurm tool's stdout (``scontrol show config``, ``sacctmgr -i load``)."""


@dataclass(frozen=True)
class Snapshot:
    """The cluster's accounting as one reconcile reads it, once for all its tenants."""

    tree: Mapping[str, list[list[str]]]  # account → its `TREE_FIELDS` rows
    qos_by_owner: Mapping[str, list[list[str]]]  # tenant → its QOS rows
    qos_by_name: Mapping[str, list[str]]
    sinfo: Mapping[str, Any]
    internal: Mapping[str, list[str]]  # pool → internal tenants' QOS (`internal_by_pool`)

    def qos_rows(self, name: str, wanted: Sequence[str]) -> list[list[str]]:
        """The QOS rows that matter to tenant ``name``: its own and any it wants."""
        rows = {r[0]: r for r in self.qos_by_owner.get(name, [])}
        for q in wanted:
            if q in self.qos_by_name:
                rows.setdefault(q, self.qos_by_name[q])
        return list(rows.values())


class SlurmTenants:
    """Tenants of one Slurm cluster; ``pools`` maps Slurm partition → computectl pool
    (the same mapping as the cluster's `SlurmWorkloadManager`)."""

    kind = "slurm"

    def __init__(
        self,
        commands: AccountingDriver,
        pools: Mapping[str, str],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not pools:
            raise ValueError("Slurm tenants need at least one partition → pool")
        self.commands = commands
        self.partitions = {pool: partition for partition, pool in pools.items()}
        self._sleep = sleep
        self._tracked: set[str] = set()  # TRES slurmdbd tracks (gres/gpu:h100, ...)

    # -- plan and apply ------------------------------------------------------------------------

    def plan(self, spec: TenantSpec) -> list[Change]:
        return [s.change for s in self._steps(spec.name, spec)]

    def apply(self, spec: TenantSpec) -> list[Change]:
        try:
            return self._run(self._steps(spec.name, spec))
        except Interrupted as exc:
            if _JOBS_ACTIVE in str(exc.cause):
                # Busy after some changes: those are live and must be recorded, so this
                # stays an interruption; its cause says what holds the rest back.
                raise Interrupted(
                    SchedulerError(
                        f"job(s) of tenant {spec.name} still use what it is leaving "
                        f"({exc.cause}); end them or delete the tenant with --force"
                    ),
                    exc.done,
                ) from exc.cause
            raise
        except SchedulerError as exc:
            # Leaving a pool: sacctmgr keeps an association (or QOS) while jobs use it.
            if _JOBS_ACTIVE in str(exc):
                raise TenantBusy(spec.name, self.jobs(spec.name)) from exc
            raise

    def plan_many(self, specs: Sequence[TenantSpec]) -> list[Outcome]:
        """``plan`` of every spec from one read of the cluster's accounting."""
        live = self._snapshot(specs)
        out = []
        for spec in specs:
            try:
                steps = self._steps(spec.name, spec, live)
            except SchedulerError as exc:
                out.append(Outcome(spec.name, error=exc))
                continue
            out.append(Outcome(spec.name, [s.change for s in steps]))
        return out

    def apply_many(self, specs: Sequence[TenantSpec]) -> list[Outcome]:
        """``apply`` of every spec: one read, then the changes of all tenants that only add
        or change objects in as few sacctmgr transactions as Slurm allows
        (`scheduler.slurm.tenants_batch`); a tenant that loses objects runs on its own
        afterwards, so a job still using one holds back that tenant alone."""
        live = self._snapshot(specs)
        out = {spec.name: Outcome(spec.name) for spec in specs}
        together: dict[str, list[acc.Step]] = {}
        alone: list[TenantSpec] = []
        for spec in specs:
            try:
                steps = self._steps(spec.name, spec, live)
            except SchedulerError as exc:
                out[spec.name].error = exc
                continue
            if any(s.change.kind is ChangeKind.DELETE for s in steps):
                alone.append(spec)
            else:
                together[spec.name] = steps
        loads = any(s.args[:2] in _LOADED for steps in together.values() for s in steps)
        self._write(batch.writes(together, self._cluster() if loads else ""), out)
        for spec in alone:
            try:
                out[spec.name].changes = self.apply(spec)
            except Interrupted as exc:
                out[spec.name].changes, out[spec.name].error = exc.done, exc.cause
            except (SchedulerError, TenantBusy) as exc:
                out[spec.name].error = exc
        return list(out.values())

    def plan_delete(self, name: str) -> list[Change]:
        return [s.change for s in self._steps(name, None)]

    def delete(
        self, name: str, force: bool = False, grace_seconds: int = 30, purge_data: bool = False
    ) -> list[Change]:
        steps = self._steps(name, None)  # refuses a foreign account before any job is touched
        jobs = self.jobs(name)
        if jobs and not force:
            raise TenantBusy(name, jobs)
        if jobs:
            self._end_jobs(name, grace_seconds)
            return self._run(steps, retry_active=_CANCEL_WAIT_SECONDS)
        return self._run(steps)

    # -- reading -------------------------------------------------------------------------------

    def jobs(self, name: str) -> list[JobInfo]:
        # squeue --json dumps every job in 22.05 (no -A filter): filter here.
        return usage.account_jobs(self.commands.squeue_json(), name)

    def managed(self) -> list[str]:
        return sorted(
            acc.managed_names(
                self.commands.sacctmgr_show("account", acc.ACCOUNT_FIELDS),
                self.commands.sacctmgr_show("qos", acc.QOS_FIELDS),
            )
        )

    # -- helpers -------------------------------------------------------------------------------

    def _steps(
        self, name: str, spec: TenantSpec | None, snapshot: Snapshot | None = None
    ) -> list[acc.Step]:
        if snapshot is None:
            # Two reads (each sacctmgr call costs ~0.2 s of slurmdbd round trips).
            all_qos = self.commands.sacctmgr_show("qos", acc.QOS_FIELDS)
            tree = self.commands.sacctmgr_show(
                "account", acc.TREE_FIELDS, "withassoc", f"name={name}"
            )
            internal: Mapping[str, list[str]] = acc.internal_by_pool(
                all_qos, [spec] if spec is not None else []
            )
        else:
            tree, internal = snapshot.tree.get(name, []), snapshot.internal
        want = None
        if spec is not None:
            sinfo = snapshot.sinfo if snapshot is not None else None
            want = acc.desired(spec, self.partitions, self._shares(spec, sinfo), internal)
        wanted = list(want.qos) if want is not None else []
        qos = all_qos if snapshot is None else snapshot.qos_rows(name, wanted)
        live, foreign = acc.read_state(name, tree, qos, self.partitions.values(), wanted)
        if foreign and spec is not None:
            raise Conflict(
                f"Slurm already has {'; '.join(foreign)}, made outside "
                f"computectl (no '{acc.MARK}{name}' description); computectl leaves it "
                "alone — choose another tenant name or remove it in Slurm"
            )
        out = acc.steps(live, want, self._default_moves(name, live, want))
        if want is not None and any(s.change.target.startswith("qos ") for s in out):
            self._check_tres(want)
        return out

    def _snapshot(self, specs: Sequence[TenantSpec]) -> Snapshot:
        """Every association, account and QOS, and the nodes: four reads for any number of
        tenants. ``show assoc`` with ``wopi`` (no parent information): with it slurmdbd
        answered 407 associations in 0.35 s, without 3.5 s; the rows differ only in the
        QOS an account inherits, which is not read."""
        described = dict(
            (r[0], r[1]) for r in self.commands.sacctmgr_show("account", acc.ACCOUNT_FIELDS)
        )
        tree: dict[str, list[list[str]]] = {}
        for row in self.commands.sacctmgr_show("assoc", acc.TREE_FIELDS[:-1], "wopi"):
            tree.setdefault(row[0], []).append([*row, described.get(row[0], "")])
        by_owner: dict[str, list[list[str]]] = {}
        by_name: dict[str, list[str]] = {}
        for row in self.commands.sacctmgr_show("qos", acc.QOS_FIELDS):
            by_name[row[0]] = row
            owner = qos_owner(row[0], row[-1])
            if owner is not None:
                by_owner.setdefault(owner, []).append(row)
        internal = acc.internal_by_pool(by_name.values(), specs)
        return Snapshot(tree, by_owner, by_name, self.commands.sinfo_json(), internal)

    def _cluster(self) -> str:
        """This cluster's name in the accounting (``sacctmgr load`` needs it)."""
        for line in self.commands.run("scontrol", "show", "config").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "ClusterName":
                return value.strip()
        raise SchedulerError("scontrol show config names no ClusterName")

    def _write(self, writes: list[batch.Write], out: Mapping[str, Outcome]) -> None:
        """Run the transactions in order; at the first failure, every tenant with a change
        in it or a later one ends with that error and the changes made before it."""
        for i, w in enumerate(writes):
            try:
                self._sacctmgr_write(w)
            except SchedulerError as exc:
                held = {t for later in writes[i:] for t, _c in later.changes}
                cause = type(exc)(f"{exc} (in one sacctmgr transaction of {len(held)} tenants)")
                for tenant in held:
                    out[tenant].error = cause
                return
            for tenant, change in w.changes:
                out[tenant].changes.append(change)

    def _sacctmgr_write(self, w: batch.Write) -> None:
        commands = self.commands
        base = getattr(commands, "timeout_seconds", None)
        if isinstance(base, (int, float)):
            # slurmdbd's time for one transaction grows with what it holds, and more with
            # the associations already there (a load of 50 new accounts took 233 s beside
            # 800 on a shared, busy 2-core machine); a sacctmgr killed before it commits
            # changes nothing, so a longer wait is the cost of a larger transaction.
            commands = copy.copy(commands)
            commands.timeout_seconds = base * max(1.0, len(w.changes) / 10)  # type: ignore[attr-defined]
        if not w.load:
            commands.sacctmgr(*w.args)
            return
        fd, path = tempfile.mkstemp(prefix="computectl-tenants-", suffix=".cfg")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(w.load)
            commands.sacctmgr(*w.args, f"file={path}")
        finally:
            os.unlink(path)

    def _shares(
        self, spec: TenantSpec, sinfo: Mapping[str, Any] | None = None
    ) -> dict[str, shares.PoolShare]:
        """Each pool of ``spec``: its per-GPU share of CPUs and memory, as Slurm reports
        the partition's nodes now (so a pool's nodes changing shows as drift in plan)."""
        pools = [q.pool for q in spec.quotas if q.pool in self.partitions]
        if not pools:
            return {}  # desired() refuses the foreign pool; no sinfo call needed
        if sinfo is None:
            sinfo = self.commands.sinfo_json()
        return {
            pool: shares.pool_share(
                shares.node_shapes(sinfo, self.partitions[pool]), self.partitions[pool]
            )
            for pool in pools
        }

    def _default_moves(
        self, name: str, live: acc.TenantState, want: acc.TenantState | None
    ) -> list[tuple[Change, tuple[str, ...]]]:
        """Users leaving the tenant whose DefaultAccount it is: where it moves to."""
        gone = slurm_users.leaving(live.associations, want.associations if want else {})
        if not gone:
            return []  # the common case costs no sacctmgr call
        rows = self.commands.sacctmgr_show(
            "user", slurm_users.USER_FIELDS, "withassoc", f"name={','.join(sorted(gone))}"
        )
        return slurm_users.default_moves(name, slurm_users.read_users(rows), gone)

    def _check_tres(self, want: acc.TenantState) -> None:
        """A GrpTRES on a GRES type slurmdbd does not track would never be enforced."""
        wanted = {key for q in want.qos.values() for key in q.grp_tres}
        if not wanted <= self._tracked:
            # Tracked TRES only change with a slurmctld restart: read again only on a miss.
            self._tracked = {
                f"{kind}/{tres}" if tres else kind
                for kind, tres in self.commands.sacctmgr_show("tres", ("Type", "Name"))
            }
        for q in want.qos.values():
            for key in q.grp_tres:
                if key not in self._tracked:
                    raise InvalidRequest(
                        f"Slurm does not track {key} (AccountingStorageTRES), so the quota "
                        f"of qos {q.name} would not be enforced; add it to slurm.conf"
                    )

    def _run(self, steps: list[acc.Step], retry_active: float = 0.0) -> list[Change]:
        """Run the steps in order; the first failure stops (the next apply re-reads).

        A failure after some steps raises `Interrupted` with exactly the changes made, so
        the control plane can record what is live; before the first, the failure itself.
        """
        deadline = time.monotonic() + retry_active
        done: list[Change] = []
        for s in steps:
            while True:
                try:
                    self.commands.sacctmgr(*s.args)
                    break
                except SchedulerError as exc:
                    # Jobs just ended leave squeue before slurmdbd records their end, and
                    # until then sacctmgr refuses to delete what they used.
                    if _JOBS_ACTIVE in str(exc) and time.monotonic() < deadline:
                        self._sleep(_POLL_SECONDS)
                        continue
                    if done:
                        raise Interrupted(exc, done) from exc
                    raise
            done.append(s.change)
        return done

    def _end_jobs(self, name: str, grace_seconds: int) -> None:
        """Cancel what waits; TERM what runs, and after the grace, cancel it (SIGKILL)."""
        self._scancel("--account", name, "--state", "PENDING")
        self._scancel("--account", name, "--state", "RUNNING", "--signal", "TERM", "--full")
        self._wait_gone(name, float(grace_seconds))
        if self.jobs(name):
            self._scancel("--account", name)
            if not self._wait_gone(name, _CANCEL_WAIT_SECONDS):
                left = ", ".join(j.id for j in self.jobs(name))
                raise SchedulerError(
                    f"job(s) {left} of tenant {name} still in the queue "
                    f"{_CANCEL_WAIT_SECONDS:g} s after scancel"
                )

    def _scancel(self, *args: str) -> None:
        try:
            self.commands.scancel(*args)
        except (Unreachable, PermissionDenied):
            raise
        except SchedulerError:
            # A job that ended in the meantime ("already completing or completed") is
            # an error for scancel, not for us: what is left is checked by waiting.
            pass

    def _wait_gone(self, name: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.jobs(name):
            if time.monotonic() >= deadline:
                return False
            self._sleep(_POLL_SECONDS)
        return True
