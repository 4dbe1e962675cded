"""The work a drain ended, kept with the drain's event: which pods a fault hit outlives the
process that drained the node.

A Kubernetes drain evicts the node's pods and the API server forgets them once they are
gone, so the backend reports them as they were (`scheduler.protocol.DrainReport.evicted`)
and the drain's event keeps them in its detail as plain JSON, under ``evicted``. The look
after the sweep (compute/services/job_impact.py), by whichever replica acts then, reads
them back. What is kept came from the cluster (a tenant names its pods) and is read from
the store: an entry that is not what this module writes is skipped, never stopping the
rest, and both the count and the lengths are bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from scheduler.protocol import DrainReport
from scheduler.work import ENDED, FAILED, NODE_FAIL, RUNNING, NodeWork, WorkRead

KEY = "evicted"
# Entries kept with one drain: a node's GPU pods each hold a GPU at least, and no node
# has this many GPUs.
MAX_ENTRIES = 128
# namespace/pod: a namespace is at most 63 characters and a pod's name 253, so no real id
# is ever cut (an over-long one is left out, never cut into another pod's id).
MAX_ID = 320
MAX_TENANT = 64  # a tenant's name is the rest of its namespace's
MAX_GPUS = 4096
_STATES = frozenset({RUNNING, NODE_FAIL, FAILED, ENDED})
_TIME_CHARS = 40  # an ISO time with microseconds and an offset is 32


def drain_detail(report: DrainReport) -> dict[str, Any]:
    """A drain event's word on the node's work: what the drain left running (pods a
    disruption budget kept), and what it ended."""
    left = {"left_running": list(report.blocked)} if report.blocked else {}
    return {**left, **evicted_detail(report.evicted)}


def evicted_detail(work: Iterable[NodeWork]) -> dict[str, Any]:
    """What a drain's event keeps of the work it ended: ``{"evicted": [...]}``, or nothing
    when it ended none. Work that would not read back is left out."""
    out: list[dict[str, Any]] = []
    for w in work:
        if len(out) >= MAX_ENTRIES:
            break
        entry = _entry(w)
        if _work(entry, w.node) is not None:
            out.append(entry)
    return {KEY: out} if out else {}


def stored_work(detail: Mapping[str, Any], node: str) -> WorkRead:
    """The work kept in a drain event's ``detail`` (of ``node``), and how many entries were
    skipped as malformed (a value under the key that is not a list counts as one)."""
    kept = detail.get(KEY) if isinstance(detail, Mapping) else None
    if kept is None:
        return WorkRead([])
    if not isinstance(kept, list):
        return WorkRead([], 1)
    out: list[NodeWork] = []
    skipped = max(0, len(kept) - MAX_ENTRIES)
    for entry in kept[:MAX_ENTRIES]:
        w = _work(entry, node)
        if w is None:
            skipped += 1
        else:
            out.append(w)
    return WorkRead(out, skipped)


def _entry(w: NodeWork) -> dict[str, Any]:
    return {
        "id": w.id,
        "tenant": w.tenant,
        "gpus": w.gpus,
        "start": w.start.isoformat(),
        "end": None if w.end is None else w.end.isoformat(),
        "state": w.state,
    }


def _text(value: object, most: int, empty: bool) -> str | None:
    if not isinstance(value, str) or len(value) > most or (not value and not empty):
        return None
    return value if value.isprintable() else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > _TIME_CHARS:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.utcoffset() is not None else None


def _work(entry: object, node: str) -> NodeWork | None:
    """One kept entry → its work on ``node``; None for anything this module does not write."""
    if not isinstance(entry, Mapping):
        return None
    work_id = _text(entry.get("id"), MAX_ID, empty=False)
    tenant = _text(entry.get("tenant"), MAX_TENANT, empty=True)
    gpus, state = entry.get("gpus"), entry.get("state")
    start, end = _time(entry.get("start")), entry.get("end")
    if work_id is None or tenant is None or start is None:
        return None
    if not isinstance(gpus, int) or isinstance(gpus, bool) or not 0 < gpus <= MAX_GPUS:
        return None
    if not isinstance(state, str) or state not in _STATES:
        return None
    ended = None if end is None else _time(end)
    if end is not None and (ended is None or ended < start):
        return None
    return NodeWork(work_id, tenant, node, gpus, start, ended, state)
