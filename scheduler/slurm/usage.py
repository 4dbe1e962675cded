"""A tenant's jobs and GPU usage from squeue and sacct (pure; `SlurmTenants` reads them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from scheduler.protocol import JobInfo
from scheduler.slurm.parse import parse_gpus, tres_gpus

SACCT_FIELDS = ("JobID", "Start", "End", "ElapsedRaw", "AllocTRES")

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


def _when(text: str, tz: tzinfo | None) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        return None  # "Unknown" (still running), "None" (never started)
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def gpu_seconds(
    rows: Sequence[Sequence[str]], start: datetime, end: datetime, tz: tzinfo | None
) -> float:
    """GPU-seconds of sacct rows (`SACCT_FIELDS`, ``-X``) inside [start, end).

    sacct selects the jobs that ran in the window but reports their whole run, so each
    job is clipped to the window; sacct prints local times without a zone (``tz``). A job
    still running (End ``Unknown``) counts up to ``end``; a start sacct cannot state
    falls back to ElapsedRaw.
    """
    total = 0.0
    for _job, started, ended, elapsed, alloc in rows:
        gpus = tres_gpus(alloc)
        if not gpus:
            continue
        t0, t1 = _when(started, tz), _when(ended, tz)
        if t0 is None:
            seconds = float(elapsed) if elapsed.isdigit() else 0.0
        else:
            seconds = (min(t1 or end, end) - max(t0, start)).total_seconds()
        total += gpus * max(0.0, seconds)
    return total
