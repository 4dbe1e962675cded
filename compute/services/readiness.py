"""Is the control plane doing its job? The sweep loop's health, for /readyz and /metrics.

Liveness (/healthz) says the process answers. Readiness says remediation works: a
sweep that reached every backend finished recently. A sweep that ran but could not
reach a backend, or skipped nodes it could not store, is reported as such; a loop
whose last good sweep is older than ``stale_after`` is not ready (and alerts).
Ages are wall-clock seconds, whatever clock the control plane runs on (the demo's
simulated one runs faster).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from compute.store import Store

# A loop may miss this many sweeps in a row before it is called stalled.
MISSED_SWEEPS = 3
# ...but never sooner than this: a short interval should not make readiness twitchy.
MIN_STALE_SECONDS = 120.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: list[str] = field(default_factory=list)
    last_good_sweep_age_seconds: float | None = None
    failing_backends: list[str] = field(default_factory=list)
    nodes_skipped: int = 0
    loop_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "reasons": self.reasons,
            "last_good_sweep_age_seconds": self.last_good_sweep_age_seconds,
            "failing_backends": self.failing_backends,
            "nodes_skipped": self.nodes_skipped,
            "loop_error": self.loop_error,
        }


def stale_after(sweep_interval_seconds: float) -> float:
    return max(MIN_STALE_SECONDS, MISSED_SWEEPS * sweep_interval_seconds)


def readiness(
    store: Store,
    sweep_interval_seconds: float,
    loop_error: str | None = None,
    started_wall: float | None = None,
    now_wall: float | None = None,
) -> Readiness:
    """``started_wall``: when this process's loop started (wall clock), if it runs one."""
    now = time.time() if now_wall is None else now_wall
    limit = stale_after(sweep_interval_seconds)
    last = store.meta("last_sweep") or {}
    good = store.meta("last_good_sweep") or {}
    reasons: list[str] = []
    age = now - float(good["wall_at"]) if "wall_at" in good else None
    failing = [str(b) for b in last.get("failed_backends", [])]
    skipped = int(last.get("skipped", 0))
    if age is None:
        if started_wall is None or now - started_wall > limit:
            reasons.append("no sweep has reached every backend yet")
        else:
            reasons.append("starting: waiting for the first sweep")
    elif age > limit:
        reasons.append(f"the last sweep that reached every backend was {age:.0f} s ago")
    if failing:
        reasons.append("backends not answering: " + ", ".join(failing))
    if skipped:
        reasons.append(f"{skipped} node(s) skipped by the last sweep (see node_skipped events)")
    if loop_error:
        reasons.append(f"the last sweep failed: {loop_error}")
    return Readiness(
        ready=age is not None and age <= limit,
        reasons=reasons,
        last_good_sweep_age_seconds=None if age is None else round(age, 1),
        failing_backends=failing,
        nodes_skipped=skipped,
        loop_error=loop_error,
    )
