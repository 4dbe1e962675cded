"""The TenantBackend protocol over a real Slurm cluster: one tenant = one account tree.

The objects and their diff are in `scheduler.slurm.accounting`; this module reads the
live state with ``sacctmgr -P -n show``, applies the steps with ``sacctmgr -i``, and
ends a tenant's work with ``scancel`` — all through `SlurmCommands`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from scheduler.errors import Conflict, InvalidRequest, PermissionDenied, SchedulerError, Unreachable
from scheduler.protocol import JobInfo
from scheduler.slurm import accounting as acc
from scheduler.slurm import shares, usage
from scheduler.slurm import users as slurm_users
from scheduler.tenants import Change, Interrupted, TenantBusy, TenantSpec

# How long delete(force=True) waits for cancelled jobs to leave the queue (after the grace):
# slurmctld kills at once, but a job is listed until its epilog has run.
_CANCEL_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.5
_JOBS_ACTIVE = "Job(s) active"  # sacctmgr's refusal to delete what running jobs use


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

    def _steps(self, name: str, spec: TenantSpec | None) -> list[acc.Step]:
        want = None
        if spec is not None:
            want = acc.desired(spec, self.partitions, self._shares(spec))
        # Two reads (each sacctmgr call costs ~0.2 s of slurmdbd round trips).
        live, foreign = acc.read_state(
            name,
            self.commands.sacctmgr_show("account", acc.TREE_FIELDS, "withassoc", f"name={name}"),
            self.commands.sacctmgr_show("qos", acc.QOS_FIELDS),
            self.partitions.values(),
            want.qos if want is not None else (),
        )
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

    def _shares(self, spec: TenantSpec) -> dict[str, shares.PoolShare]:
        """Each pool of ``spec``: its per-GPU share of CPUs and memory, as Slurm reports
        the partition's nodes now (so a pool's nodes changing shows as drift in plan)."""
        pools = [q.pool for q in spec.quotas if q.pool in self.partitions]
        if not pools:
            return {}  # desired() refuses the foreign pool; no sinfo call needed
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
