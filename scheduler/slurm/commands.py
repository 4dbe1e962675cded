"""The one place computectl runs Slurm's tools: sinfo/squeue ``--json``, ``scontrol``,
and for tenants ``sacctmgr``, ``scancel`` and ``sacct``.

Everything the Slurm backend learns or changes goes through a `SlurmDriver`;
`SlurmCommands` is the driver that runs the CLIs, exactly as an operator
would.  A pyslurm driver can be added later by implementing the same three
methods (returning the same openapi v0.0.38 shapes), without touching the
backend or its parsing.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from scheduler.errors import Conflict, NotFound, SchedulerError, Unreachable
from scheduler.slurm.errors import classify, daemon_of, one_line, unreachable_line

# Keep each scontrol command line well below ARG_MAX and slurmctld's message limits.
_NODES_PER_UPDATE = 500
# The control plane's own settings (config path, data dir, API token, ...): never a job's.
CONTROL_PLANE_PREFIX = "COMPUTECTL_"


def current_user() -> str:
    """The user computectl runs as: its jobs run as this user (reservations, scancel)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def job_env(
    keep: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """An environment override (``sbatch``/``start``'s ``env``) for a job computectl submits.

    Slurm hands the submitting tool's environment to the job: every control-plane variable
    of ``environ`` (default: this process's) is removed (None), then ``keep`` is set.
    """
    env: dict[str, str | None] = {
        k: None
        for k in (os.environ if environ is None else environ)
        if k.startswith(CONTROL_PLANE_PREFIX)
    }
    env.update(keep or {})
    return env


class SlurmDriver(Protocol):
    """What the backend needs from Slurm. Errors are `scheduler.errors` types."""

    def sinfo_json(self) -> dict[str, Any]:
        """Every node (sinfo --json; 22.05 ignores -n/-p, so no filter is offered)."""

    def squeue_json(self) -> dict[str, Any]:
        """Every job squeue knows of (22.05 ignores -w/-t with --json)."""

    def update_nodes(self, nodes: Sequence[str], **fields: str) -> None:
        """``scontrol update nodename=<nodes> key=value ...``."""


@runtime_checkable
class TopologyDriver(Protocol):
    """A driver that can also tell the cluster's switches; one without it has no topology."""

    def topology_text(self) -> str:
        """``scontrol show topology``: one ``SwitchName=... Level=... Nodes=...`` line per
        switch (22.05's scontrol has no --json); "" when Slurm runs no topology plugin."""


class SlurmCommands:
    """Runs Slurm's client tools with a given SLURM_CONF, bin dir and timeout."""

    def __init__(
        self,
        bin_dir: Path | None = None,
        slurm_conf: Path | None = None,
        timeout_seconds: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        self.slurm_conf = slurm_conf
        self.timeout_seconds = timeout_seconds
        self._env = dict(os.environ if env is None else env)
        if slurm_conf is not None:
            self._env["SLURM_CONF"] = str(slurm_conf)
        # Slurm's messages are matched as text (scheduler.slurm.errors): keep them English.
        self._env["LC_ALL"] = "C"

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment every tool runs with (before a call's own ``env``)."""
        return self._env

    def __repr__(self) -> str:
        return (
            f"SlurmCommands(bin_dir={self.bin_dir!s}, slurm_conf={self.slurm_conf!s}, "
            f"timeout_seconds={self.timeout_seconds})"
        )

    # -- the driver ----------------------------------------------------------------------------

    def sinfo_json(self) -> dict[str, Any]:
        return self._json("sinfo", "--json")

    def squeue_json(self) -> dict[str, Any]:
        return self._json("squeue", "--json", "--all")

    def topology_text(self) -> str:
        # Without topology/tree scontrol says "No topology information available" on
        # stderr and exits 0.
        return self.run("scontrol", "show", "topology")

    def update_nodes(self, nodes: Sequence[str], **fields: str) -> None:
        if not nodes:
            return
        for i in range(0, len(nodes), _NODES_PER_UPDATE):
            chunk = ",".join(nodes[i : i + _NODES_PER_UPDATE])
            self.run(
                "scontrol", "update", f"nodename={chunk}", *(f"{k}={v}" for k, v in fields.items())
            )

    # -- accounting (tenants) ------------------------------------------------------------------

    def sacctmgr_show(self, entity: str, fields: Sequence[str], *where: str) -> list[list[str]]:
        """``sacctmgr -P -n show <entity> format=... [where ...]``: one list of fields per row.

        22.05's sacctmgr has no --json; ``-P`` separates fields with ``|`` (no trailing one).
        """
        args = ["-P", "-n", "show", entity, f"format={','.join(fields)}"]
        if where:
            args += ["where", *where]
        return _rows(self.run("sacctmgr", *args), len(fields))

    def sacctmgr(self, *args: str) -> str:
        """``sacctmgr -i <args>``: a change, committed at once (no interactive prompt)."""
        return self.run("sacctmgr", "-i", *args)

    def scancel(self, *args: str) -> None:
        self.run("scancel", *args)

    def sacct(self, *args: str) -> str:
        """``sacct <args>``'s output as printed: its reader parses each line itself and
        counts the lines it cannot read."""
        return self.run("sacct", *args)

    def start(self, tool: str, *args: str, env: Mapping[str, str | None] | None = None) -> Started:
        """Start a tool that runs as long as its job (``srun``); the caller waits and reads.

        ``env`` changes the tool's environment as `sbatch`'s does."""
        exe = self._exe(tool)
        # Output goes to temporary files, not pipes: a chatty job must never block on a
        # full pipe while the caller waits on another one.
        out = tempfile.TemporaryFile("w+", errors="replace")  # noqa: SIM115 (Started closes it)
        err = tempfile.TemporaryFile("w+", errors="replace")  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [exe, *args], stdout=out, stderr=err, text=True, env=self._merged_env(env)
            )
        except OSError as exc:
            out.close()
            err.close()
            raise self._cannot_start(tool, exe, exc) from None
        return Started(proc, out, err)

    # -- reservations and batch jobs (burn-in) ------------------------------------------------

    def reservations_text(self) -> str:
        """``scontrol show reservation -o``: one ``Key=Value ...`` line per reservation
        (22.05's scontrol has no --json); "" when there are none."""
        out = self.run("scontrol", "show", "reservation", "-o")
        return "" if out.strip().startswith("No reservations") else out

    def create_reservation(self, **fields: str) -> None:
        self.run("scontrol", "create", "reservation", *(f"{k}={v}" for k, v in fields.items()))

    def update_reservation(self, name: str, **fields: str) -> None:
        self.run(
            "scontrol",
            "update",
            "reservation",
            f"ReservationName={name}",
            *(f"{k}={v}" for k, v in fields.items()),
        )

    def delete_reservation(self, name: str) -> None:
        """Conflict while a job still runs in it; NotFound when it is gone already."""
        try:
            self.run("scontrol", "delete", f"reservation={name}")
        except SchedulerError as exc:
            text = str(exc).lower()
            if "reservation is in use" in text:
                raise Conflict(str(exc)) from None
            if "reservation is invalid" in text:
                raise NotFound(str(exc)) from None
            raise

    def sbatch(self, *args: str, env: Mapping[str, str | None] | None = None) -> str:
        """``sbatch --parsable <args>``: the job id. ``env`` changes sbatch's own environment
        (a None value removes the variable), which Slurm hands on to the job."""
        proc = self._exec("sbatch", ("--parsable", *args), env)
        return proc.stdout.strip().split(";")[0]

    # -- the plumbing --------------------------------------------------------------------------

    def _exe(self, tool: str) -> str:
        return str(self.bin_dir / tool) if self.bin_dir is not None else tool

    def _cannot_start(self, tool: str, exe: str, exc: OSError) -> SchedulerError:
        if isinstance(exc, FileNotFoundError):
            where = f" in {self.bin_dir}" if self.bin_dir is not None else " on PATH"
            return SchedulerError(f"Slurm's {tool} is not installed{where}")
        return SchedulerError(f"cannot run {exe}: {exc}")

    def run(self, tool: str, *args: str) -> str:
        """Run one tool; its stdout, or the matching SchedulerError."""
        return self._exec(tool, args).stdout

    def _exec(
        self, tool: str, args: Sequence[str], env: Mapping[str, str | None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        exe = self._exe(tool)
        argv = [exe, *args]
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                # What Slurm prints is outside input: a reason anyone set may hold any byte.
                errors="replace",
                env=self._merged_env(env),
                timeout=self.timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Unreachable(
                f"{daemon_of(tool)} is not answering "
                f"({tool} timed out after {self.timeout_seconds:g} s)"
            ) from None
        except OSError as exc:
            raise self._cannot_start(tool, exe, exc) from None
        if proc.returncode != 0:
            text = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}"
            kind = classify(text)
            if kind is Unreachable:
                raise Unreachable(unreachable_line(tool, text))
            raise kind(f"{tool} {args[0] if args else ''}: {one_line(text)}".strip())
        return proc

    def _merged_env(self, env: Mapping[str, str | None] | None) -> dict[str, str]:
        """The tools' environment with ``env`` applied (a None value removes the variable)."""
        merged = dict(self._env)
        for k, v in (env or {}).items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return merged

    def _json(self, tool: str, *args: str) -> dict[str, Any]:
        proc = self._exec(tool, args)
        out = proc.stdout
        try:
            data = json.loads(out)
        except ValueError:
            raise SchedulerError(f"{tool} --json printed no JSON: {one_line(out)!r}") from None
        if not isinstance(data, dict):
            raise SchedulerError(f"{tool} --json printed {type(data).__name__}, not an object")
        errors = data.get("errors") or []
        if errors:
            # 22.05 reports a failed load (controller down, auth failure) here with exit
            # status 0 and only "Unspecified error"; the cause is on stderr if anywhere.
            text = "; ".join(
                str(e.get("error", e)) if isinstance(e, dict) else str(e) for e in errors
            )
            if proc.stderr.strip():
                text = f"{text} ({one_line(proc.stderr)})"
            kind = classify(text)
            if kind is SchedulerError:
                kind = Unreachable
            raise kind(f"{tool} could not load its data from slurmctld: {text}")
        return data


@dataclass
class Started:
    """A running tool: poll it, end it, and read what it printed once it is done."""

    proc: subprocess.Popen[str]
    out: IO[str]
    err: IO[str]

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def finish(self) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of the ended tool; the files are closed."""
        code = self.proc.wait()
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read())
        self.close()
        return code, texts[0], texts[1]

    def close(self) -> None:
        """Close the output files (again is fine); the tool is not waited for."""
        self.out.close()
        self.err.close()


def _rows(out: str, width: int) -> list[list[str]]:
    """Parsable (``-P -n``) output → rows of exactly ``width`` fields.

    Short rows are padded; a ``|`` inside the last field (a free-text description, so
    callers put it last) stays in it rather than shifting the columns.
    """
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) > width:
            fields = [*fields[: width - 1], "|".join(fields[width - 1 :])]
        rows.append(fields + [""] * (width - len(fields)))
    return rows
