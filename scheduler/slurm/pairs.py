"""The pair test on a Slurm pool: one ``srun`` per pair, one task on each of its two nodes.

``srun`` allocates the two nodes whole (``--exclusive``, every GPU of each) in
the pool's partition, so a pair waits in the queue like any job and never runs
beside a tenant's work. Each task is the node-side probe; what rank 0 prints
comes back on srun's standard output. Node names are Slurm's (SLURMD_NODENAME
tells each task which side it is), the rendezvous address is the first node's
NodeAddr.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import uuid
from collections.abc import Callable, Sequence

from scheduler.errors import SchedulerError
from scheduler.pairs import PairOutcome, PairRun, probe_argv
from scheduler.slurm.commands import SlurmCommands, Started, current_user, job_env
from scheduler.slurm.errors import one_line
from scheduler.slurm.parse import parse_gpus

JOB_PREFIX = "computectl-pair"
_POLL_SECONDS = 0.2
# How long the cancelled pairs' srun processes get, all together, to exit by themselves.
_END_SECONDS = 10.0
# srun names its job on stderr ("srun: job 42 queued and waiting for resources").
_JOB_ID = re.compile(r"\bjob (\d+)\b")


def job_names(count: int, run_id: str | None = None) -> list[str]:
    """One job name per pair of a round, unique to this round (``run_id``: random)."""
    run_id = run_id or uuid.uuid4().hex[:8]
    return [f"{JOB_PREFIX}-{run_id}-{i}" for i in range(count)]


def scancel_args(name: str, partition: str, user: str) -> list[str]:
    """scancel's arguments for one pair's job, queued or running.

    Slurm matches ``--name`` exactly and takes one name per option: one call per job.
    """
    return [f"--name={name}", f"--partition={partition}", f"--user={user}"]


class SlurmPairs:
    """PairLauncher on one partition of a Slurm cluster."""

    def __init__(
        self,
        commands: SlurmCommands,
        partition: str,
        command: Sequence[str] = ("computectl",),
        clock: Callable[[], float] = time.monotonic,
        user: str | None = None,
    ) -> None:
        self.commands = commands
        self.partition = partition
        self.command = tuple(command)
        self._clock = clock
        self.user = user or current_user()

    def run_pairs(
        self, pairs: Sequence[PairRun], extra_args: Sequence[str], timeout_seconds: float
    ) -> list[PairOutcome]:
        if not pairs:
            return []
        addresses, gpus = self._nodes()
        names = job_names(len(pairs))
        # srun hands its environment to the tasks: the control plane's settings (its API
        # token, its config path) are not the nodes'.
        env = job_env(environ=self.commands.environ)
        started: list[Started | SchedulerError] = []
        try:
            for run, name in zip(pairs, names, strict=True):
                argv = self._srun_args(run, name, addresses, gpus, extra_args, timeout_seconds)
                try:
                    started.append(self.commands.start("srun", *argv, env=env))
                except SchedulerError as exc:
                    started.append(exc)
            deadline = self._clock() + timeout_seconds
            while self._clock() < deadline and any(
                isinstance(s, Started) and s.poll() is None for s in started
            ):
                time.sleep(_POLL_SECONDS)
            late = {
                name
                for s, name in zip(started, names, strict=True)
                if isinstance(s, Started) and s.poll() is None
            }
            if late:
                # Ends the jobs whether they are still queued or running; the srun
                # processes then exit by themselves, and are killed if they do not.
                self._cancel([n for n in names if n in late])
                _end(
                    [
                        s
                        for s, n in zip(started, names, strict=False)
                        if n in late and isinstance(s, Started)
                    ]
                )
            return [
                self._outcome(run, name, s, name in late, timeout_seconds)
                for run, name, s in zip(pairs, names, started, strict=True)
            ]
        except BaseException:
            # Interrupted (KeyboardInterrupt included) or failed while the jobs ran: none
            # of them may outlive the round, queued or running.
            ours = [(s, n) for s, n in zip(started, names, strict=False) if isinstance(s, Started)]
            with contextlib.suppress(Exception):
                self._cancel([n for _, n in ours])
            for s, _ in ours:
                with contextlib.suppress(Exception):
                    s.kill()
            raise
        finally:
            for each in started:
                if isinstance(each, Started):
                    each.close()

    def _cancel(self, names: Sequence[str]) -> None:
        for name in names:
            # A job that ended meanwhile matches nothing; one that cannot be cancelled
            # must not keep the others from it.
            with contextlib.suppress(SchedulerError):
                self.commands.scancel(*scancel_args(name, self.partition, self.user))

    @staticmethod
    def _outcome(
        run: PairRun, name: str, s: Started | SchedulerError, timed_out: bool, timeout: float
    ) -> PairOutcome:
        if isinstance(s, SchedulerError):
            return PairOutcome(run.nodes, "", "", f"srun could not start: {s}")
        code, out, err = s.finish()
        found = _JOB_ID.search(err)
        job = found.group(1) if found else name
        error = ""
        if timed_out:
            waited = "queued" if "queued and waiting" in err and "allocated" not in err else ""
            error = (
                f"not finished after {timeout:g} s"
                + (f" ({waited} for {','.join(run.nodes)})" if waited else "")
                + "; cancelled"
            )
        elif code != 0:
            error = f"srun exit {code}: {one_line(_last_lines(err)) or 'no message'}"
        return PairOutcome(run.nodes, job, out, error)

    def _nodes(self) -> tuple[dict[str, str], dict[str, int]]:
        addresses: dict[str, str] = {}
        gpus: dict[str, int] = {}
        for raw in self.commands.sinfo_json().get("nodes", []):
            name = str(raw.get("name", ""))
            addresses[name] = str(raw.get("address") or name)
            gpus[name] = parse_gpus(raw.get("gres"))[1]
        return addresses, gpus

    def _srun_args(
        self,
        run: PairRun,
        name: str,
        addresses: dict[str, str],
        gpus: dict[str, int],
        extra_args: Sequence[str],
        timeout_seconds: float,
    ) -> list[str]:
        args = [
            f"--partition={self.partition}",
            f"--nodelist={','.join(run.nodes)}",
            "--nodes=2",
            "--ntasks=2",
            "--ntasks-per-node=1",
            "--exclusive",
            f"--job-name={name}",
            f"--time={max(1, math.ceil(timeout_seconds / 60))}",
            # One side failing must end the other, not leave it waiting on the peer.
            "--kill-on-bad-exit=1",
        ]
        per_node = min(gpus.get(n, 0) for n in run.nodes)
        if per_node:
            args.append(f"--gres=gpu:{per_node}")
        return [*args, *probe_argv(self.command, run, addresses, extra_args)]


def _end(late: Sequence[Started], seconds: float | None = None) -> None:
    """Wait for the cancelled srun processes together, ``seconds`` in all; kill what is left."""
    deadline = time.monotonic() + (_END_SECONDS if seconds is None else seconds)
    while time.monotonic() < deadline and any(s.poll() is None for s in late):
        time.sleep(_POLL_SECONDS)
    for s in late:
        s.kill()


def _last_lines(text: str, n: int = 2) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " / ".join(lines[-n:])
