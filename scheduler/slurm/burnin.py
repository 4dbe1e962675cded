"""Burn-in on a drained Slurm node, in a MAINT reservation computectl owns.

Slurm starts no job on a DRAINED node, not even in a reservation. So the node is first put in
a reservation (``computectl-burnin-<node>``, ``Flags=MAINT,IGNORE_JOBS``, ``Users=`` the user
computectl runs as), then resumed into it: idle, but only computectl's jobs can start there.
A batch job in the reservation runs ``computectl node check --suite burnin --report URL`` on
the node; its results reach the control plane as every node check's do (POST .../health),
with the node's own credential (its /etc/computectl/node-token, good for that node only):
the job's environment carries no token, and none of the control plane's variables.

While the reservation holds the node, the backend lists it as drained with a reason of
computectl's (`burn_in_reason`): to the control plane it is still the node it drained, never
one someone else resumed. Draining or resuming the node ends the reservation (and a burn-in
job still running in it); a reservation not computectl's is never touched.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from scheduler.errors import Conflict, InvalidRequest, NotFound, SchedulerError
from scheduler.slurm.commands import SlurmDriver, current_user, job_env
from scheduler.slurm.parse import (
    QueuedJob,
    Reservation,
    is_drained,
    parse_reservations,
    unfinished_jobs,
)

NAME_PREFIX = "computectl-burnin-"
# health.policy's ownership prefix; scheduler does not import health (lint-imports).
OWNED_PREFIX = "computectl:"
FLAGS = ("MAINT", "IGNORE_JOBS")
# The job's working directory: the control plane's own need not exist on the node.
JOB_DIR = "/tmp"
# How long a deletion waits for a cancelled burn-in job to leave the reservation.
_DELETE_TRIES = 20
_DELETE_PAUSE_SECONDS = 0.25
_log = logging.getLogger("computectl.scheduler.slurm")


def reservation_name(node: str) -> str:
    """The reservation and the job share this name: one burn-in per node at a time."""
    return f"{NAME_PREFIX}{node}"


def burn_in_reason(reservation: str) -> str:
    return f"{OWNED_PREFIX} burn-in in reservation {reservation}"


def is_ours(res: Reservation, user: str) -> bool:
    """computectl's own burn-in reservation: its name, one node, its user only, MAINT.

    Slurm 22.05 reservations have no comment to carry an ownership marker; a reservation of
    the same name made by hand differs in one of these (users, flags) unless it copies all.
    """
    return (
        len(res.nodes) == 1
        and res.name == reservation_name(res.nodes[0])
        and res.users == (user,)
        and "MAINT" in res.flags
    )


def burn_in_command(command: Sequence[str], node: str, report_url: str) -> str:
    """The job's shell line (``sbatch --wrap``), every word quoted."""
    return shlex.join(
        [*command, "node", "check", "--suite", "burnin", "--node", node, "--report", report_url]
    )


def sbatch_args(
    node: str,
    partition: str,
    gpus: int,
    command: Sequence[str],
    report_url: str,
    time_limit_minutes: int,
    output: str,
    account: str | None = None,
) -> list[str]:
    """sbatch's arguments for one burn-in job on ``node``, in its reservation."""
    name = reservation_name(node)
    args = [
        f"--reservation={name}",
        f"--job-name={name}",
        f"--partition={partition}",
        f"--nodelist={node}",
        "--nodes=1",
        "--exclusive",
        f"--time={time_limit_minutes}",
        f"--chdir={JOB_DIR}",
        f"--output={output}",
    ]
    if gpus > 0:
        # --exclusive gives the job every CPU but GPUs only as asked: the burn-in needs all.
        args.append(f"--gres=gpu:{gpus}")
    if account:
        args.append(f"--account={account}")
    return [*args, "--wrap", burn_in_command(command, node, report_url)]


class BurnInDriver(SlurmDriver, Protocol):
    """What burn-in needs from Slurm beyond the backend's reads and node updates."""

    def reservations_text(self) -> str: ...

    def create_reservation(self, **fields: str) -> None: ...

    def update_reservation(self, name: str, **fields: str) -> None: ...

    def delete_reservation(self, name: str) -> None: ...

    def sbatch(self, *args: str, env: Mapping[str, str | None] | None = None) -> str: ...

    def scancel(self, *args: str) -> None: ...


class BurnInReservations:
    """computectl's burn-in reservations in one cluster: which nodes they hold, and ending them."""

    def __init__(
        self,
        commands: BurnInDriver,
        user: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.commands = commands
        self.user = user or current_user()
        self._sleep = sleep

    def all(self) -> list[Reservation]:
        return parse_reservations(self.commands.reservations_text())

    def holding(self) -> dict[str, str]:
        """Node → name of computectl's active burn-in reservation on it."""
        return {
            r.nodes[0]: r.name for r in self.all() if r.state == "ACTIVE" and is_ours(r, self.user)
        }

    def jobs(self, nodes: Sequence[str]) -> list[QueuedJob]:
        """computectl's burn-in jobs for ``nodes`` that have not finished."""
        names = frozenset(reservation_name(n) for n in nodes)
        return [
            j for j in unfinished_jobs(self.commands.squeue_json(), names) if j.user == self.user
        ]

    def cancel_jobs(self, nodes: Sequence[str]) -> None:
        jobs = self.jobs(nodes)
        if jobs:
            # -Q: a job that ended meanwhile is not an error.
            self.commands.scancel("-Q", *(j.id for j in jobs))

    def release(self, nodes: Sequence[str]) -> None:
        """End computectl's burn-in on ``nodes``: its jobs cancelled, its reservations gone.

        A reservation of the same name that is not computectl's is left as it is.
        """
        wanted = {reservation_name(n) for n in nodes}
        ours = [r for r in self.all() if r.name in wanted and is_ours(r, self.user)]
        if not ours:
            return
        self.cancel_jobs([r.nodes[0] for r in ours])
        for r in ours:
            self._delete(r.name)

    def _delete(self, name: str) -> None:
        for attempt in range(_DELETE_TRIES):
            try:
                self.commands.delete_reservation(name)
                return
            except NotFound:
                return
            except Conflict:
                # A cancelled job leaves its reservation a moment later (COMPLETING).
                if attempt == _DELETE_TRIES - 1:
                    raise
                self._sleep(_DELETE_PAUSE_SECONDS)


class SlurmBurnIn:
    """Starts burn-in on a drained node of one partition; `launch` raises the backend's errors."""

    def __init__(
        self,
        reservations: BurnInReservations,
        partition: str,
        report_url: str,
        command: Sequence[str] = ("computectl",),
        time_limit_minutes: int = 60,
        reservation_minutes: int = 180,
        output: str = f"{JOB_DIR}/computectl-burnin-%j.out",
        account: str | None = None,
    ) -> None:
        if reservation_minutes <= time_limit_minutes:
            raise ValueError("the reservation must outlast the burn-in job's time limit")
        self.reservations = reservations
        self.commands = reservations.commands
        self.partition = partition
        self.report_url = report_url
        self.command = tuple(command)
        self.time_limit_minutes = time_limit_minutes
        self.reservation_minutes = reservation_minutes
        self.output = output
        self.account = account

    def launch(self, node: str, gpus: int) -> str:
        """Reserve ``node``, resume it into the reservation, submit the job; the job id."""
        raw = self._raw_node(node)
        reason = str(raw.get("reason") or "")
        if is_drained(raw) and reason and not reason.startswith(OWNED_PREFIX):
            raise InvalidRequest(
                f"{node} is drained by someone else (reason: {reason!r}); no burn-in there"
            )
        name = reservation_name(node)
        user = self.reservations.user
        existing = next((r for r in self.reservations.all() if r.name == name), None)
        if existing is None:
            self.commands.create_reservation(
                ReservationName=name,
                Nodes=node,
                StartTime="now",
                Duration=str(self.reservation_minutes),
                Users=user,
                Flags=",".join(FLAGS),
            )
        elif is_ours(existing, user):
            # A new attempt: the last one's job must not report over it, and the reservation
            # gets its full time again.
            self.reservations.cancel_jobs([node])
            self.commands.update_reservation(name, EndTime=f"now+{self.reservation_minutes}minutes")
        else:
            raise InvalidRequest(
                f"reservation {name} exists but is not computectl's (nodes "
                f"{','.join(existing.nodes) or '-'}, users {','.join(existing.users) or '-'}, "
                f"flags {','.join(sorted(existing.flags)) or '-'}); remove it for burn-in on {node}"
            )
        if is_drained(raw):
            # Only now: the reservation already keeps everyone else's jobs off the node.
            self.commands.update_nodes([node], state="resume")
        try:
            return self.commands.sbatch(
                *sbatch_args(
                    node,
                    self.partition,
                    gpus,
                    self.command,
                    self.report_url,
                    self.time_limit_minutes,
                    self.output,
                    self.account,
                ),
                # The submitter's environment would follow the job: none of it, no token.
                env=job_env(),
            )
        except SchedulerError as exc:
            # No job (a bad account or partition, say): the node must not sit idle in the
            # reservation until it ends. Drained as it was (or, held by the last attempt's
            # reservation, as the control plane saw it), then the reservation ends.
            if is_drained(raw) or existing is not None:
                before = reason if is_drained(raw) and reason else burn_in_reason(name)
            else:
                before = ""
            self._undo(node, before, exc)
            raise

    def _undo(self, node: str, reason: str, cause: SchedulerError) -> None:
        """Put ``node`` back after a failed submission: drained with ``reason`` (if any),
        computectl's reservation on it gone. What fails here is logged; the caller raises."""
        try:
            if reason:
                # Before the reservation ends: no other work may start on the node.
                self.commands.update_nodes([node], state="drain", reason=reason)
            self.reservations.release([node])
        except SchedulerError as exc:
            _log.warning(
                "burn-in on %s not submitted (%s); putting the node back failed too: %s",
                node,
                cause,
                exc,
            )

    def _raw_node(self, node: str) -> dict[str, Any]:
        for raw in self.commands.sinfo_json().get("nodes") or []:
            if isinstance(raw, dict) and raw.get("name") == node:
                return raw
        raise NotFound(f"Slurm does not know node {node}")
