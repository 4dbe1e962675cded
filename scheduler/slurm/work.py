"""Which jobs ran on a node, from squeue (running now) and sacct (ended, or running as the
accounting saw it): Slurm's side of `scheduler.work.WorkHistory`.

Pure readers over what the tools print; `SlurmWorkloadManager` runs the tools. Both
answers are outside input: one entry that is not what Slurm prints is skipped and
counted, never stopping the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol, runtime_checkable

from scheduler.slurm.hostlist import expand
from scheduler.slurm.parse import running_jobs
from scheduler.slurm.usage import SACCT_TIME, USAGE_STATES, Malformed, tres_models
from scheduler.work import ENDED, FAILED, NODE_FAIL, RUNNING, NodeWork, WorkRead

# NodeList last: the one field that may hold commas (a hostlist), never a "|".
WORK_FIELDS = ("JobID", "Account", "Start", "End", "State", "AllocTRES", "NodeList")
_JOB_ID = re.compile(r"[0-9]{1,20}(_[0-9]{1,10}|\+[0-9]{1,10})?")
_ACCOUNT = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_STATE = re.compile(r"[A-Z_]{1,32}")
_NOT_A_TIME = frozenset({"Unknown", "None", ""})
_RUNNING = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "STOPPED", "CONFIGURING"})
_FAILED = frozenset({"FAILED", "OUT_OF_MEMORY", "BOOT_FAIL"})
# A job spans at most this many nodes: a longer hostlist is garbled, and never expanded.
_MAX_NODES = 100_000
# Epoch seconds before 2001 or past 2100 are not a job's start.
_EPOCH_MIN, _EPOCH_MAX = 978_307_200, 4_102_444_800


@runtime_checkable
class SacctDriver(Protocol):
    def sacct(self, *args: str) -> str:
        """``sacct <args>``'s standard output."""
        ...


def end_state(slurm_state: str) -> str:
    """Slurm's job state (``CANCELLED by 0``: its first word) → `scheduler.work`'s words."""
    word = slurm_state.split(" ", 1)[0].upper()
    if word in _RUNNING:
        return RUNNING
    if word == "NODE_FAIL":
        return NODE_FAIL
    return FAILED if word in _FAILED else ENDED


def sacct_args(
    since: datetime, until: datetime, tz: tzinfo | None, *, node: str | None, states: str
) -> list[str]:
    """sacct's arguments for the jobs (allocations, not steps) in one of ``states`` at some
    time in [since, until], on ``node`` only when given."""
    args = [
        "--parsable2", "--noheader", "--allusers", "--allocations",
        f"--format={','.join(WORK_FIELDS)}",
        f"--state={states}",
        f"--starttime={since.astimezone(tz).strftime(SACCT_TIME)}",
        f"--endtime={until.astimezone(tz).strftime(SACCT_TIME)}",
    ]  # fmt: skip
    if node is not None:
        args.append(f"--nodelist={node}")
    return args


def work_on_args(node: str, since: datetime, until: datetime, tz: tzinfo | None) -> list[str]:
    return sacct_args(since, until, tz, node=node, states=USAGE_STATES)


def node_fail_args(since: datetime, until: datetime, tz: tzinfo | None) -> list[str]:
    return sacct_args(since, until, tz, node=None, states="NODE_FAIL")


def _time(text: str, tz: tzinfo | None) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"time {text[:40]!r}") from None
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def work_line(line: str, tz: tzinfo | None) -> list[NodeWork]:
    """One `WORK_FIELDS` line → one `NodeWork` per node the job ran on; none for a step or
    a job that never started. Raises Malformed."""
    fields = line.split("|")
    if len(fields) != len(WORK_FIELDS):
        raise Malformed(f"{len(fields)} fields, not {len(WORK_FIELDS)}")
    job, account, started, ended, state, tres, nodelist = (f.strip() for f in fields)
    if "." in job:
        return []
    if not _JOB_ID.fullmatch(job) or not _ACCOUNT.fullmatch(account):
        raise Malformed(f"job {job[:40]!r} of account {account[:40]!r}")
    word = state.split(" ", 1)[0]
    if not _STATE.fullmatch(word):
        raise Malformed(f"state {state[:40]!r}")
    gpus = sum(tres_models(tres).values())
    if started in _NOT_A_TIME or nodelist in ("", "None assigned"):
        return []
    start = _time(started, tz)
    end = None if ended in _NOT_A_TIME else _time(ended, tz)
    if end is not None and end < start:
        raise Malformed(f"job {job} ends before it starts")
    try:
        nodes = expand(nodelist, limit=_MAX_NODES)
    except ValueError as exc:
        raise Malformed(f"node list {nodelist[:60]!r}: {exc}") from None
    how = end_state(word)
    if how == RUNNING:
        end = None
    return [NodeWork(job, account, n, gpus, start, end, how) for n in nodes]


def sacct_work(text: str, tz: tzinfo | None, node: str | None = None) -> WorkRead:
    """Every line of sacct's answer (of ``node`` only, when given); a malformed line is
    skipped and counted."""
    out: list[NodeWork] = []
    skipped = 0
    # sacct ends lines with "\n" only; splitlines would also split inside a field.
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            out += [w for w in work_line(line, tz) if node is None or w.node == node]
        except Malformed:
            skipped += 1
    return WorkRead(out, skipped)


def _epoch(value: Any) -> datetime:
    """squeue's start_time: a number (22.05) or ``{"set": true, "number": N}`` (23.11+)."""
    if isinstance(value, dict):
        if value.get("set") is False:
            raise Malformed("start_time not set")
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"start_time {str(value)[:40]!r}")
    if not _EPOCH_MIN <= value <= _EPOCH_MAX:
        raise Malformed(f"start_time {value}")
    return datetime.fromtimestamp(value, UTC)


def _squeue_entry(raw: Any, node: str) -> NodeWork | None:
    if not isinstance(raw, dict):
        raise Malformed("a job that is not an object")
    try:
        found = running_jobs({"jobs": [raw]})
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise Malformed(f"job: {exc}") from None
    if not found or node not in found[0].gpus_by_node:
        return None
    job = found[0]
    if not _JOB_ID.fullmatch(job.id) or not _ACCOUNT.fullmatch(job.account):
        raise Malformed(f"job {job.id[:40]!r} of account {job.account[:40]!r}")
    gpus = sum(job.gpus_by_node.values())
    if not 0 <= gpus <= 1_000_000:
        raise Malformed(f"{gpus} GPUs")
    return NodeWork(job.id, job.account, node, gpus, _epoch(raw.get("start_time")), None, RUNNING)


def squeue_work(squeue: Mapping[str, Any], node: str) -> WorkRead:
    """The jobs running on ``node`` now, from ``squeue --json``."""
    jobs = squeue.get("jobs") if isinstance(squeue, Mapping) else None
    if not isinstance(jobs, list):
        return WorkRead([], 1)
    out: list[NodeWork] = []
    skipped = 0
    for raw in jobs:
        try:
            w = _squeue_entry(raw, node)
        except Malformed:
            skipped += 1
            continue
        if w is not None:
            out.append(w)
    return WorkRead(out, skipped)


def merge(running: WorkRead, accounted: WorkRead) -> WorkRead:
    """squeue's jobs and sacct's, one per job and node: sacct's where it has ended the job
    (squeue may lag), squeue's while the job runs (slurmdbd hears of starts a moment late)."""
    by_key = {(w.id, w.node): w for w in running.work}
    for w in accounted.work:
        if w.end is not None or (w.id, w.node) not in by_key:
            by_key[(w.id, w.node)] = w
    return WorkRead(list(by_key.values()), running.skipped + accounted.skipped)
