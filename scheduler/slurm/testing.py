"""An in-memory Slurm for tests of the layers above: the `SlurmDriver` seam of
`scheduler.slurm.commands` and burn-in's `BurnInDriver`, answering as Slurm 22.05's tools do.

    slurm = InMemorySlurm.of({"gpu-001": "training", "gpu-002": "training"})
    wm = SlurmWorkloadManager(slurm, {"training": "training"})
    slurm.run_job("gpu-001", account="acme", gpus=4)
    with slurm.down():
        wm.list_nodes()  # Unreachable, as with slurmctld stopped
    slurm.fail("sbatch", "sbatch: error: Invalid account or account/partition specified")
    slurm.time_out("scontrol delete")

Every command is logged in `calls` as the argv `SlurmCommands` would run (``scontrol update
nodename=gpu-001,gpu-002 state=drain reason=...``), reads included. Reservations (``scontrol
show|create|update|delete reservation``), ``sbatch`` and ``scancel`` act as on the real cluster:
a MAINT reservation marks its node, a job submitted into it runs there, a cancelled job stays
COMPLETING for `linger` commands (its reservation cannot be deleted until then).
`InMemorySlurm.recorded` starts from captured ``sinfo --json``/``squeue --json`` output
instead. Accounting (tenants) is tested against the real cluster (tests/integration).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from scheduler.errors import Conflict, InvalidRequest, NotFound, SchedulerError, Unreachable
from scheduler.slurm.errors import classify, daemon_of
from scheduler.slurm.hostlist import expand
from scheduler.slurm.parse import is_drained, parse_reservations, tres_gpus

T = TypeVar("T")
UNREACHABLE = "Unable to contact slurm controller (connect failure)"
_NULL = "(null)"
_END_IN = re.compile(r"now\+(\d+)minutes?")
_FINISHED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT"})


@dataclass
class _Failure:
    """Commands starting with ``prefix`` fail ``times`` more times (None: always)."""

    prefix: str
    error: SchedulerError
    times: int | None
    # The command took effect before its answer was lost (a timeout after the fact).
    done: bool = False


@dataclass
class InMemorySlurm:
    """Nodes as ``sinfo --json`` lists them and jobs as ``squeue --json`` does, by name;
    reservations as ``scontrol show reservation -o`` does, field by field."""

    nodes: dict[str, dict[str, Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    reachable: bool = True
    updates: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)
    # Nodes whose GPUs in use the double counts from its jobs (not from a captured listing).
    counted: frozenset[str] = frozenset()
    reservations: dict[str, dict[str, str]] = field(default_factory=dict)
    # The user computectl runs as: its reservations' Users and its jobs' user_name.
    user: str = "root"
    # Commands a cancelled job stays COMPLETING for.
    linger: int = 0
    calls: list[tuple[str, ...]] = field(default_factory=list)
    # The environment each job was submitted with (`sbatch`'s ``env``), by job id.
    job_envs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    # What ``sacct`` prints, whatever it is asked (accounting itself is the real cluster's).
    accounting: str = ""
    _ending: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def of(cls, partitions: Mapping[str, str], gpus: int = 8) -> InMemorySlurm:
        """Idle nodes (node → partition), each with ``gpus`` H100s."""
        nodes = {
            name: {
                "name": name,
                "state": "idle",
                "state_flags": [],
                "reason": "",
                "partitions": [partition],
                "gres": f"gpu:h100:{gpus}",
            }
            for name, partition in partitions.items()
        }
        return cls(nodes, counted=frozenset(nodes))

    @classmethod
    def recorded(cls, sinfo: Mapping[str, Any], squeue: Mapping[str, Any]) -> InMemorySlurm:
        """The cluster a captured ``sinfo --json`` and ``squeue --json`` show."""
        nodes = {str(n["name"]): dict(n) for n in sinfo.get("nodes") or []}
        return cls(nodes, [dict(j) for j in squeue.get("jobs") or []])

    # -- the SlurmDriver seam ------------------------------------------------------------------

    def sinfo_json(self) -> dict[str, Any]:
        lost = self._run("sinfo", "--json")
        maintained = self._maintained()
        out = {"nodes": [self._listed(raw, maintained) for raw in self.nodes.values()]}
        return self._answer(lost, out)

    def squeue_json(self) -> dict[str, Any]:
        lost = self._run("squeue", "--json", "--all")
        return self._answer(lost, {"jobs": copy.deepcopy(self.jobs)})

    def update_nodes(self, nodes: Sequence[str], **fields: str) -> None:
        """``scontrol update nodename=<nodes> state=drain|down|resume [reason=...]``."""
        if not nodes:
            return
        lost = self._run("scontrol", "update", f"nodename={','.join(nodes)}", *_pairs(fields))
        if any(n not in self.nodes for n in nodes):
            raise NotFound("slurm_update error: Invalid node name specified")
        self.updates.append((list(nodes), dict(fields)))
        state = fields.get("state", "").lower()
        refused = False
        for name in nodes:
            raw = self.nodes[name]
            flags = [f for f in raw.get("state_flags") or [] if f != "DRAIN"]
            if state == "drain":
                raw.update(state_flags=[*flags, "DRAIN"], reason=fields.get("reason", ""))
            elif state == "down":
                raw.update(state="down", reason=fields.get("reason", ""))
                self.jobs = [j for j in self.jobs if j.get("nodes") != name]
            elif state == "resume":
                if not is_drained(raw):
                    refused = True
                    continue
                base = str(raw.get("state") or "").lower()
                raw.update(
                    state="idle" if base in ("down", "fail") else base,
                    state_flags=flags,
                    reason="",
                )
        if refused:
            # scontrol resumes the others, then reports the one it could not.
            raise InvalidRequest("slurm_update error: Invalid node state specified")
        self._answer(lost, None)

    # -- reservations and batch jobs (burn-in's BurnInDriver) ----------------------------------

    def reservations_text(self) -> str:
        lost = self._run("scontrol", "show", "reservation", "-o")
        lines = (" ".join(_pairs(r)) for r in self.reservations.values())
        return self._answer(lost, "\n".join(lines))

    def create_reservation(self, **fields: str) -> None:
        lost = self._run("scontrol", "create", "reservation", *_pairs(fields))
        name = fields.get("ReservationName", "")
        nodes = expand(fields.get("Nodes", ""))
        if not name or name in self.reservations:
            raise InvalidRequest(f"Error creating the reservation: Duplicate name {name!r}")
        if not nodes or any(n not in self.nodes for n in nodes):
            raise NotFound("Error creating the reservation: Invalid node name specified")
        if not fields.get("Users") and not fields.get("Accounts"):
            raise InvalidRequest(
                "Error creating the reservation: Invalid user or account specified"
            )
        start = datetime.now().replace(microsecond=0)
        minutes = int(fields.get("Duration", "1440"))
        flags = [*fields.get("Flags", "").split(","), "SPEC_NODES"]
        self.reservations[name] = {
            "ReservationName": name,
            "StartTime": start.isoformat(),
            "EndTime": (start + timedelta(minutes=minutes)).isoformat(),
            "Duration": _duration(minutes),
            "Nodes": fields["Nodes"],
            "NodeCnt": str(len(nodes)),
            "Flags": ",".join(f for f in flags if f),
            "Users": fields.get("Users") or _NULL,
            "Accounts": fields.get("Accounts") or _NULL,
            "State": "ACTIVE",
        }
        self._answer(lost, None)

    def update_reservation(self, name: str, **fields: str) -> None:
        lost = self._run(
            "scontrol", "update", "reservation", f"ReservationName={name}", *_pairs(fields)
        )
        res = self._reservation(name)
        for key, value in fields.items():
            end = _END_IN.fullmatch(value)
            if key == "EndTime" and end:
                value = (datetime.now() + timedelta(minutes=int(end[1]))).isoformat()[:19]
            res[key] = value
        self._answer(lost, None)

    def delete_reservation(self, name: str) -> None:
        """Conflict while a job still runs in it; NotFound when it is gone already."""
        lost = self._run("scontrol", "delete", f"reservation={name}")
        self._reservation(name)
        if any(j.get("reservation") == name for j in self._unfinished()):
            raise Conflict("scontrol delete: Error deleting the reservation: Reservation is in use")
        del self.reservations[name]
        self._answer(lost, None)

    def sbatch(self, *args: str, env: Mapping[str, str | None] | None = None) -> str:
        """``sbatch --parsable <args>``: a one-node job, running unless its node takes no work."""
        lost = self._run("sbatch", "--parsable", *args)
        opts = dict(a[2:].partition("=")[::2] for a in args if a.startswith("--"))
        node = opts.get("nodelist", "")
        if node not in self.nodes:
            raise NotFound(
                "sbatch: error: Batch job submission failed: Invalid node name specified"
            )
        if opts.get("partition", "") not in self.nodes[node]["partitions"]:
            raise InvalidRequest(
                "sbatch: error: Batch job submission failed: Invalid partition name specified"
            )
        reservation = opts.get("reservation", "")
        if reservation:
            self._reservation(reservation)
        job = self.run_job(
            node,
            account=opts.get("account", self.user),
            gpus=int(opts.get("gres", "gpu:0").rsplit(":", 1)[-1]),
            name=opts.get("job-name", "wrap"),
            user=self.user,
            reservation=reservation,
        )
        if is_drained(self.nodes[node]):
            self.jobs[-1]["job_state"] = "PENDING"
        self.job_envs[job] = dict(env or {})
        return self._answer(lost, job)

    def scancel(self, *args: str) -> None:
        """``scancel [-Q] [--name=|--partition=|--user=|--account=...] [ids]``."""
        lost = self._run("scancel", *args)
        ids = [a for a in args if not a.startswith("-")]
        opts = dict(a[2:].partition("=")[::2] for a in args if a.startswith("--"))
        keys = {"name": "name", "partition": "partition", "user": "user_name", "account": "account"}
        known = {str(j.get("job_id")) for j in self.jobs}
        if "-Q" not in args and any(i not in known for i in ids):
            raise NotFound("scancel: error: Invalid job id specified")
        for job in self._unfinished():
            if ids and str(job.get("job_id")) not in ids:
                continue
            if any(str(job.get(keys[k])) != v for k, v in opts.items() if k in keys):
                continue
            if self.linger:
                job["job_state"] = "COMPLETING"
                self._ending[str(job["job_id"])] = self.linger
            else:
                job["job_state"] = "CANCELLED"
        self._answer(lost, None)

    def sacct(self, *args: str) -> str:
        return self._answer(self._run("sacct", *args), self.accounting)

    # -- what a test does to the cluster -------------------------------------------------------

    def run_job(
        self,
        node: str,
        account: str,
        gpus: int,
        name: str = "train",
        user: str = "alice",
        reservation: str = "",
    ) -> str:
        """A running job of ``account`` holding ``gpus`` GPUs of ``node``; its id."""
        job = str(max((int(j["job_id"]) for j in self.jobs), default=999) + 1)
        self.jobs.append(
            {
                "job_id": int(job),
                "name": name,
                "user_name": user,
                "job_state": "RUNNING",
                "reservation": reservation,
                "account": account,
                "partition": self.nodes[node]["partitions"][0],
                "nodes": node,
                "tres_alloc_str": f"cpu=1,node=1,billing=1,gres/gpu={gpus}",
            }
        )
        return job

    def reserve(self, text: str) -> None:
        """Reservations as ``scontrol show reservation -o`` printed them (captured lines)."""
        for line in text.splitlines():
            fields = dict(item.partition("=")[::2] for item in line.split() if "=" in item)
            if fields.get("ReservationName"):
                self.reservations[fields["ReservationName"]] = fields

    def fail(self, command: str, error: str | SchedulerError, times: int | None = 1) -> None:
        """The next ``times`` commands starting with ``command`` (``sbatch``, ``scontrol
        delete``) fail: with Slurm's message (typed as `SlurmCommands` types it) or ``error``."""
        if isinstance(error, str):
            error = classify(error)(error)
        self.failures.append(_Failure(command, error, times))

    def time_out(self, command: str, times: int | None = 1, done: bool = False) -> None:
        """The next ``times`` commands starting with ``command`` time out, having taken
        effect first if ``done`` (only the answer was lost)."""
        tool = command.split()[0]
        lost = Unreachable(f"{daemon_of(tool)} is not answering ({tool} timed out after 30 s)")
        self.failures.append(_Failure(command, lost, times, done))

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """slurmctld unreachable inside the block."""
        self.reachable = False
        try:
            yield
        finally:
            self.reachable = True

    def reasons(self) -> dict[str, str]:
        """Reasons of the nodes taking no new work, as ``sinfo -R`` shows them."""
        return {n: str(raw.get("reason") or "") for n, raw in self.nodes.items() if is_drained(raw)}

    def commands(self, prefix: str = "") -> list[str]:
        """The command lines run so far that start with ``prefix``, as a shell would echo them."""
        lines = (" ".join(argv) for argv in self.calls)
        return [line for line in lines if line.startswith(prefix)]

    # -- helpers -------------------------------------------------------------------------------

    def _run(self, *argv: str) -> SchedulerError | None:
        """One command: logged, its cancelled jobs a step nearer their end, then an outage or
        an injected failure raised; a failure to raise once the command took effect returned."""
        self.calls.append(argv)
        for job_id, left in list(self._ending.items()):
            self._ending[job_id] = left - 1
            if left <= 0:
                del self._ending[job_id]
                for job in self.jobs:
                    if str(job["job_id"]) == job_id:
                        job["job_state"] = "CANCELLED"
        if not self.reachable:
            raise Unreachable(UNREACHABLE)
        line = " ".join(argv)
        for failure in self.failures:
            if line.startswith(failure.prefix) and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                if failure.done:
                    return failure.error
                raise failure.error
        return None

    @staticmethod
    def _answer(lost: SchedulerError | None, answer: T) -> T:
        if lost is not None:
            raise lost
        return answer

    def _reservation(self, name: str) -> dict[str, str]:
        res = self.reservations.get(name)
        if res is None:
            raise NotFound(f"scontrol: error: Reservation {name} is invalid")
        return res

    def _unfinished(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs if str(j.get("job_state")).upper() not in _FINISHED]

    def _maintained(self) -> set[str]:
        """Nodes in an active MAINT reservation."""
        text = "\n".join(" ".join(_pairs(r)) for r in self.reservations.values())
        return {
            n
            for r in parse_reservations(text)
            if r.state == "ACTIVE" and "MAINT" in r.flags
            for n in r.nodes
        }

    def _listed(self, raw: dict[str, Any], maintained: set[str]) -> dict[str, Any]:
        out = copy.deepcopy(raw)
        if raw["name"] in maintained:
            out["state_flags"] = [*out.get("state_flags", []), "MAINTENANCE", "RESERVED"]
        if raw["name"] in self.counted:
            used = sum(
                tres_gpus(j.get("tres_alloc_str"))
                for j in self.jobs
                if j.get("nodes") == raw["name"] and j.get("job_state") == "RUNNING"
            )
            out["gres_used"] = f"gpu:h100:{used}(IDX:N/A)"
            if used and out["state"] == "idle":
                out["state"] = "mixed"
        return out


def _pairs(fields: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in fields.items()]


def _duration(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02}:{rest % 60:02}:00"
    return f"{days}-{clock}" if days else clock
