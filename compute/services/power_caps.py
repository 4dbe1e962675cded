"""GPU power caps: requested, applied by the node agent, read back, reverted, expired.

The control plane only records what is wanted. The node agent (the node check, or for a
simulated node the same code run after a sweep, health/power.py) posts its readings and is
answered with what to apply or restore; it applies each through NVML clamped to its GPUs'
min/max, reads it back and reports the outcome with its next post. So a cap is ``pending``
until its node reports, then ``applied`` (read back) or ``failed`` (the node's reason).

Published for other services (rack budgets): ``request_caps`` and ``revert_caps``. Both
audit every cap and raise an event per node; a node given more than
[power] cap_rate_limit_per_hour caps in a rolling hour is refused (``RateLimited``, 429).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from math import isfinite
from typing import TYPE_CHECKING, Any

from compute.domain import AUTOMATION
from compute.errors import ComputeError, InvalidInput, NotFoundError, RefusedError
from compute.services import power_readings
from compute.services.power_report import MAX_GPU_WATTS, PowerReport
from compute.store import power_caps as kept
from compute.store.power_caps import NewCap, Note, PowerCap

if TYPE_CHECKING:
    from compute.runtime import Runtime

__all__ = [
    "RateLimited",
    "after_sweep",
    "node_actions",
    "node_exchange",
    "request_caps",
    "revert_caps",
]

SOURCES = ("operator", "policy")
MAX_NODES_PER_REQUEST = 10_000


class RateLimited(ComputeError):
    """A node was given as many caps as the rate limit allows: nothing was recorded."""

    http_status = 429
    code = "rate_limited"


def _key(i: int) -> str:
    return str(i)


def _covers(gpus: tuple[int, ...] | None, other: tuple[int, ...] | None, count: int) -> bool:
    mine = set(range(count)) if gpus is None else set(gpus)
    theirs = set(range(count)) if other is None else set(other)
    return theirs <= mine


def _overlaps(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> bool:
    return a is None or b is None or bool(set(a) & set(b))


def request_caps(
    rt: Runtime,
    nodes: Sequence[str],
    watts: float,
    *,
    gpus: Sequence[int] | None = None,
    actor: str,
    reason: str,
    expires_at: datetime | None = None,
    source: str = "operator",
) -> list[PowerCap]:
    """Record a cap of ``watts`` per GPU (``gpus`` of each node, None: all) on each of
    ``nodes``, pending until each node's agent applies it; all or none (unknown node, GPU
    index past a node's count, rate limit, a revert in flight: nothing is recorded)."""
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}")
    if not isfinite(watts) or not 0 < watts <= MAX_GPU_WATTS:
        raise InvalidInput(f"watts must be above 0 and at most {MAX_GPU_WATTS:g}")
    names = list(dict.fromkeys(nodes))
    if not names:
        raise InvalidInput("no node to cap")
    if len(names) > MAX_NODES_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_NODES_PER_REQUEST} nodes at once")
    wanted = None if gpus is None else tuple(sorted(set(gpus)))
    if wanted is not None and not wanted:
        raise InvalidInput("--gpus names no GPU")
    now = rt.clock.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the cap would expire before it starts")
    settings = rt.settings.power
    limit = settings.cap_rate_limit_per_hour
    counts = kept.recent_counts(rt.store, names, now - timedelta(hours=1))
    over = [n for n in names if counts.get(n, 0) >= limit]
    if over:
        raise RateLimited(
            f"{', '.join(over[:5])}{' ...' if len(over) > 5 else ''}: already {limit} power "
            "caps in the last hour ([power] cap_rate_limit_per_hour); try again later"
        )
    active = kept.listed(rt.store, nodes=names, states=kept.ACTIVE)
    new: list[NewCap] = []
    supersede: list[int] = []
    for name in names:
        node = rt.store.node(name)
        if node is None:
            raise NotFoundError(f"unknown node {name!r}")
        if wanted is not None and wanted[-1] >= node.gpu_count:
            raise InvalidInput(f"{name} has {node.gpu_count} GPUs (indices 0-{node.gpu_count - 1})")
        carry: dict[str, float | None] = {}
        for c in (c for c in active if c.node == name and _overlaps(c.gpus, wanted)):
            if c.state in (kept.REVERTING, kept.REVERT_FAILED):
                raise RefusedError(
                    f"cap {c.id} on {name} is being reverted ({c.state}); wait for its node "
                    "or revert it again first"
                )
            if not _covers(wanted, c.gpus, node.gpu_count):
                raise RefusedError(
                    f"cap {c.id} on {name} covers other GPUs too; revert it first or cap "
                    "the same GPUs"
                )
            supersede.append(c.id)
            carry.update({k: v for k, v in c.before.items() if k not in carry})
        new.append(NewCap(name, node.rack, wanted, float(watts), source, actor, reason,
                          expires_at, carry))  # fmt: skip
    note = Note(
        "power.cap",
        "power_cap_requested",
        {"watts": watts, "gpus": None if wanted is None else list(wanted), "source": source,
         "expires_at": expires_at.isoformat() if expires_at else None,
         "supersedes": supersede},
    )  # fmt: skip
    return kept.add(rt.store, new, supersede, now, note)


def revert_caps(
    rt: Runtime,
    *,
    nodes: Sequence[str] | None = None,
    cap_ids: Sequence[int] | None = None,
    actor: str,
    reason: str,
    source: str | None = None,
) -> list[PowerCap]:
    """Revert the active caps of ``nodes`` or those of ``cap_ids`` (of ``source`` only if
    given): an applied one waits for its node to restore the limits it recorded before (a
    GPU it did not know: its default); one never applied is cancelled. Returns the caps as
    they now stand; caps already reverted are left as they are (not returned)."""
    if nodes is None and cap_ids is None:
        raise InvalidInput("name the nodes or the caps to revert")
    found = kept.listed(
        rt.store,
        nodes=None if nodes is None else list(dict.fromkeys(nodes)),
        ids=None if cap_ids is None else list(dict.fromkeys(cap_ids)),
    )
    if cap_ids is not None:
        missing = set(cap_ids) - {c.id for c in found}
        if missing:
            raise NotFoundError(f"no power cap {min(missing)}")
    now = rt.clock.now()
    out = []
    for c in found:
        if c.state not in kept.ACTIVE or c.state == kept.REVERTING:
            continue
        if source is not None and c.source != source:
            continue
        touched = any(c.after.get(k) not in (None, v) for k, v in c.before.items())
        undo = c.state in (kept.APPLIED, kept.REVERT_FAILED) or (c.state == kept.FAILED and touched)
        to = kept.REVERTING if undo else kept.CANCELLED
        done = kept.transition(
            rt.store, c.id, expect=(c.state,), to=to, actor=actor, at=now,
            note=Note("power.revert", "power_cap_revert_requested" if undo
                      else "power_cap_cancelled", {"reason": reason, "was": c.state}),
            values={"reverted_by": str.__str__(actor), "revert_reason": reason},
        )  # fmt: skip
        if done is not None:
            out.append(done)
    return out


def node_actions(rt: Runtime, node: str) -> list[dict[str, Any]]:
    """What ``node``'s agent must do now: apply pending caps, restore reverting ones."""
    out: list[dict[str, Any]] = []
    for c in kept.listed(rt.store, nodes=[node], states=(kept.PENDING, kept.REVERTING)):
        if c.state == kept.PENDING:
            gpus = None if c.gpus is None else list(c.gpus)
            out.append({"id": c.id, "action": "apply", "watts": c.watts, "gpus": gpus})
        else:
            out.append({"id": c.id, "action": "revert", "restore": dict(c.before)})
    return out


def node_exchange(rt: Runtime, node: str, report: PowerReport, actor: str) -> dict[str, Any]:
    """A node's post: its readings stored (compute/services/power_readings.py), the outcomes
    of what it was given last recorded, and what it must do now."""
    known = rt.store.node(node)
    if known is None:
        raise NotFoundError(f"unknown node {node!r}")
    if any(g.index >= known.gpu_count for g in report.gpus):
        raise InvalidInput(f"{node} has {known.gpu_count} GPUs (indices 0-{known.gpu_count - 1})")
    power_readings.store_report(rt, known, report)
    now = rt.clock.now()
    ignored = 0
    for o in report.outcomes:
        before = {_key(g.index): g.before for g in o.gpus}
        clamped = {_key(g.index): g.clamped for g in o.gpus if g.clamped is not None}
        after = {_key(g.index): g.after for g in o.gpus}
        if o.action == "apply":
            caps = kept.listed(rt.store, nodes=[node], ids=[o.id], states=(kept.PENDING,))
            if not caps:
                ignored += 1
                continue
            values = {"before": {**before, **caps[0].before}, "clamped": clamped,
                      "after": after, "detail": o.detail}  # fmt: skip
            to = kept.APPLIED if o.ok else kept.FAILED
            event = "power_cap_applied" if o.ok else "power_cap_failed"
        else:
            values = {"after": after, "detail": o.detail}
            to = kept.REVERTED if o.ok else kept.REVERT_FAILED
            event = "power_cap_reverted" if o.ok else "power_cap_revert_failed"
        done = kept.transition(
            rt.store, o.id, expect=(kept.PENDING,) if o.action == "apply" else (kept.REVERTING,),
            to=to, actor=actor, at=now, values=values,
            note=Note(f"power.{o.action}", event,
                      {"detail": o.detail, "after": after, "clamped": clamped},
                      result="ok" if o.ok else "failed"),
        )  # fmt: skip
        ignored += done is None
    return {"node": node, "actions": node_actions(rt, node), "ignored_outcomes": ignored}


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: caps past their expiry reverted,
    simulated nodes' agents run, power sampled and old samples folded. What could not be
    done, one line each (the next sweep tries again)."""
    errors: list[str] = []
    now = rt.clock.now()
    expired = kept.listed(
        rt.store, states=(kept.PENDING, kept.APPLIED, kept.FAILED), expired_by=now
    )
    for c in expired:
        try:
            revert_caps(rt, cap_ids=[c.id], actor=AUTOMATION, reason="expired")
        except ComputeError as exc:
            errors.append(f"power cap {c.id}: expiry: {exc}")
    errors += power_readings.simulated_agents(rt)
    errors += power_readings.sample_and_compact(rt, now)
    return errors
