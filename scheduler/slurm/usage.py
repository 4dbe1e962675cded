"""A tenant's jobs and GPU usage from squeue and sacct.

The readers are pure (`SlurmTenants` runs the tools for the tenant's jobs and GPU-seconds);
`SlurmUsage` is the cluster's `UsageSource`: one ``sacct`` over every account, each
allocation a `UsageRecord` per GPU model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Protocol

from scheduler.protocol import JobInfo
from scheduler.slurm.parse import gpu_model, parse_gpus, tres_gpus
from scheduler.usage import UNKNOWN_MODEL, UsageRead, UsageRecord

_RUNNING = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "STOPPED", "RESIZING"})
_PENDING = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"})


def account_jobs(squeue: Mapping[str, object], account: str) -> list[JobInfo]:
    """The account's running and pending jobs from ``squeue --json`` (22.05 cannot filter)."""
    out = []
    jobs = squeue.get("jobs")
    for raw in jobs if isinstance(jobs, list) else []:
        if not isinstance(raw, dict) or raw.get("account") != account:
            continue
        state = str(raw.get("job_state") or "").upper()
        if state not in _RUNNING and state not in _PENDING:
            continue
        running = state in _RUNNING
        gpus = tres_gpus(str(raw.get("tres_alloc_str" if running else "tres_req_str") or ""))
        if not gpus:
            per_node = parse_gpus(str(raw.get("tres_per_node") or ""))[1]
            gpus = per_node * int(raw.get("node_count") or 1)
        out.append(
            JobInfo(
                id=str(raw.get("job_id")),
                tenant=account,
                gpus=gpus,
                state="running" if running else "pending",
            )
        )
    return out


# -- usage records (UsageSource) --------------------------------------------------------------

USAGE_FIELDS = ("JobID", "Account", "Partition", "Start", "End", "AllocTRES")
# Every state a job that held GPUs in the window can be in: with --state, sacct selects the
# jobs that were in one of them at some time in [--starttime, --endtime], so a job that
# started before the window and still runs, or ended inside it, is listed either way.
USAGE_STATES = (
    "RUNNING,SUSPENDED,COMPLETED,CANCELLED,FAILED,TIMEOUT,NODE_FAIL,PREEMPTED,"
    "OUT_OF_MEMORY,BOOT_FAIL,DEADLINE,REQUEUED"
)
# sacct's --starttime/--endtime take local time without a zone.
SACCT_TIME = "%Y-%m-%dT%H:%M:%S"
# More GPUs than any allocation holds: a larger count is a garbled line, not a job.
_MAX_GPUS = 1_000_000
# 123, an array task 123_4 (or a pending array 123_[1-9]), a heterogeneous part 123+0;
# steps (123.batch, 123.0, 123.extern) carry a dot and are left out (-X lists none).
_JOB_ID = re.compile(r"[0-9]{1,20}(_[0-9]{1,10}|_\[[0-9,\-%]{1,200}\]|\+[0-9]{1,10})?")
_TRES_KEY = re.compile(r"gres/gpu(:[A-Za-z0-9_.\-]{1,64})?")
_COUNT = re.compile(r"[0-9]{1,7}")
_NOT_A_TIME = frozenset({"Unknown", "None", ""})


class Malformed(ValueError):
    """One sacct line that is not what sacct prints."""


class SacctDriver(Protocol):
    def sacct(self, *args: str) -> str:
        """``sacct <args>``'s standard output."""


def usage_args(
    since: datetime, until: datetime, tz: tzinfo | None, account: str | None
) -> list[str]:
    """sacct's arguments for the allocations that overlap [since, until)."""
    args = [
        "--parsable2", "--noheader", "--allusers", "--allocations",
        f"--format={','.join(USAGE_FIELDS)}",
        f"--state={USAGE_STATES}",
        f"--starttime={since.astimezone(tz).strftime(SACCT_TIME)}",
        f"--endtime={until.astimezone(tz).strftime(SACCT_TIME)}",
    ]  # fmt: skip
    if account is not None:
        args.append(f"--accounts={account}")
    return args


def tres_models(tres: str) -> dict[str, int]:
    """``cpu=8,gres/gpu=8,gres/gpu:h100=8`` → {"H100-SXM": 8}; GPUs no type accounts for
    are `UNKNOWN_MODEL`. Raises Malformed on a GPU count that is not a count."""
    total: int | None = None
    typed: dict[str, int] = {}
    for item in tres.split(","):
        key, eq, value = item.partition("=")
        if not key.startswith("gres/gpu"):
            continue
        if not eq or not _TRES_KEY.fullmatch(key) or not _COUNT.fullmatch(value):
            raise Malformed(f"GPU count {item[:80]!r}")
        count = int(value)
        if count > _MAX_GPUS:
            raise Malformed(f"GPU count {count}")
        if key == "gres/gpu":
            total = count
        else:
            model = gpu_model(key.partition(":")[2])
            typed[model] = typed.get(model, 0) + count
    known = sum(typed.values())
    if total is None:
        total = known
    if known > total:
        raise Malformed(f"typed GPUs {known} over the total {total}")
    out = {m: n for m, n in typed.items() if n}
    if total > known:
        out[UNKNOWN_MODEL] = out.get(UNKNOWN_MODEL, 0) + total - known
    return out


def _time(text: str, tz: tzinfo | None) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"time {text[:40]!r}") from None
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def usage_line(
    line: str, partitions: Mapping[str, str], until: datetime, tz: tzinfo | None
) -> list[UsageRecord]:
    """One `USAGE_FIELDS` line → its records: none for a step, a job that never started, a
    job without GPUs or one in a partition that is none of the pools'. Raises Malformed."""
    fields = line.split("|")
    if len(fields) != len(USAGE_FIELDS):
        raise Malformed(f"{len(fields)} fields, not {len(USAGE_FIELDS)}")
    job, account, partition, started, ended, tres = (f.strip() for f in fields)
    if "." in job:
        return []
    if not _JOB_ID.fullmatch(job) or not account:
        raise Malformed(f"job {job[:40]!r} of account {account[:40]!r}")
    models = tres_models(tres)
    pool = partitions.get(partition)
    if started in _NOT_A_TIME or pool is None or not models:
        return []
    start = _time(started, tz)
    end = until if ended in _NOT_A_TIME else _time(ended, tz)
    if end < start:
        raise Malformed(f"job {job} ends before it starts")
    return [UsageRecord(account, pool, m, start, end, n) for m, n in sorted(models.items())]


def usage_records(
    text: str, partitions: Mapping[str, str], until: datetime, tz: tzinfo | None
) -> UsageRead:
    """Every line of sacct's answer; a malformed line is skipped and counted."""
    records: list[UsageRecord] = []
    skipped = 0
    # sacct ends lines with "\n" only; splitlines would also split inside a field.
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            records += usage_line(line, partitions, until, tz)
        except Malformed:
            skipped += 1
    return UsageRead(records, skipped)


class SlurmUsage:
    """GPU usage of one Slurm cluster's pools from its accounting (slurmdbd, through sacct);
    ``partitions`` maps Slurm partition → computectl pool, as the workload manager's does."""

    kind = "slurm"

    def __init__(
        self, commands: SacctDriver, partitions: Mapping[str, str], tz: tzinfo | None = None
    ) -> None:
        self.commands = commands
        self.partitions = dict(partitions)
        # sacct reads and prints the cluster's local time; computectl runs beside it.
        self.tz = tz if tz is not None else datetime.now().astimezone().tzinfo

    def usage(self, since: datetime, until: datetime, tenant: str | None = None) -> UsageRead:
        text = self.commands.sacct(*usage_args(since, until, self.tz, tenant))
        read = usage_records(text, self.partitions, until, self.tz)
        if tenant is None:
            return read
        return UsageRead([r for r in read.records if r.tenant == tenant], read.skipped)
