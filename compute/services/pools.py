"""Pools and their modes: recorded from the settings, switched by operators between observe
(decisions recorded as what would have been done) and enforce (computectl acts), per pool or
per check; and the report of what observe mode saw."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from compute.clock import Clock
from compute.config_pools import PoolSettings
from compute.domain import AuditEntry, Pool
from compute.errors import InvalidInput, NotFoundError
from compute.services.gate import DRAIN_HELD, ENFORCE, OBSERVE, WOULD_ACT
from compute.store import Store
from compute.store import incidents as kept

# Who records a pool the first time (its mode then is the pool's ``adopt`` setting).
ADOPTED_BY = "computectl/adopt"
_SPAN = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=366)


def record_pools(store: Store, pools: Sequence[PoolSettings], clock: Clock) -> list[str]:
    """Record pools not yet known with the mode their settings adopt them in; a pool already
    recorded keeps the mode operators gave it. The names recorded now."""
    # Every process that builds a runtime gets here (a node check too, a dozen at once under
    # slurmd): a read when every pool is known, a write only for what is new.
    known = {p.name for p in store.pools()}
    pools = [p for p in pools if p.name not in known]
    if not pools:
        return []
    now = clock.now()
    added = []
    with store.transaction() as tx:
        for p in pools:
            pool = Pool(
                p.name,
                p.backend,
                p.gpu_model,
                mode=p.adopt,
                mode_changed_at=now,
                mode_actor=ADOPTED_BY,
            )
            if kept.record_pool(tx, pool):
                added.append(p.name)
    return added


def parse_window(text: str) -> timedelta:
    """ "24h", "30m", "7d", "90s": a window back from now, 1 s to 366 days."""
    m = _SPAN.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InvalidInput(f"since: {text!r} is not a duration such as 90s, 30m, 24h or 7d"[:200])
    span = timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])
    if not timedelta(seconds=1) <= span <= MAX_WINDOW:
        raise InvalidInput(f"since: {text} is outside 1s..366d")
    return span


def known_check(check: str) -> str:
    from compute.validation import known_checks

    known = known_checks()
    if check not in known:
        raise InvalidInput(f"unknown check {check!r}; known: {', '.join(sorted(known))}"[:400])
    return check


def get_pool(store: Store, name: str) -> Pool:
    pool = kept.pool(store, name)
    if pool is None:
        raise NotFoundError(f"no pool {name!r}")
    return pool


def set_mode(
    store: Store, clock: Clock, name: str, mode: str, check: str | None, actor: str
) -> Pool:
    """``mode`` observe or enforce for the whole pool, or with ``check`` for that check alone
    (in an enforcing pool). Audited; the pool's nodes' recorded decisions are forgotten, so
    observe mode reports them again and enforce mode starts clean."""
    before = get_pool(store, name)
    checks = list(before.observe_checks)
    if check is None:
        new_mode, checks = mode, []
    else:
        known_check(check)
        new_mode = before.mode
        if mode == OBSERVE and check not in checks:
            checks.append(check)
        elif mode == ENFORCE and check in checks:
            checks.remove(check)
    now = clock.now()
    after = Pool(
        before.name,
        before.backend,
        before.gpu_model,
        mode=new_mode,
        observe_checks=tuple(sorted(checks)),
        mode_changed_at=now,
        mode_actor=actor,
    )
    with store.transaction() as tx:
        kept.set_pool_mode(tx, after)
        kept.clear_would(tx, name)
        tx.add_audit(
            AuditEntry(
                at=now,
                actor=actor,
                action=f"pool.{'observe' if mode == OBSERVE else 'enable'}",
                target=name,
                detail={
                    "check": check,
                    "from": {"mode": before.mode, "observe_checks": list(before.observe_checks)},
                    "to": {"mode": after.mode, "observe_checks": list(after.observe_checks)},
                },
            )
        )
    return after


@dataclass
class PoolReport:
    """What observe mode (and the brake) kept from happening in a pool over a window."""

    pool: str
    mode: str
    observe_checks: tuple[str, ...]
    since: datetime
    until: datetime
    # action -> check -> count of nodes; action -> nodes
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)
    nodes: dict[str, list[str]] = field(default_factory=dict)
    held: int = 0
    held_nodes: list[str] = field(default_factory=list)


def report(store: Store, clock: Clock, name: str, window: timedelta) -> PoolReport:
    """Each node counted once per action and check over the window (a node seen would-drain
    twice for the same check is one drain it would have made)."""
    pool = get_pool(store, name)
    until = clock.now()
    since = until - window
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    nodes: dict[str, set[str]] = defaultdict(set)
    seen: set[tuple[str, str, str]] = set()
    held: set[str] = set()
    held_count = 0
    for ev in kept.gate_events(store, (WOULD_ACT, DRAIN_HELD), name, since):
        if ev.kind == DRAIN_HELD:
            held_count += 1
            held.add(ev.node)
            continue
        action = str(ev.detail.get("action", ""))
        check = str(ev.detail.get("check") or "-")
        if (ev.node, action, check) in seen:
            continue
        seen.add((ev.node, action, check))
        counts[action][check] += 1
        nodes[action].add(ev.node)
    return PoolReport(
        pool=name,
        mode=pool.mode,
        observe_checks=pool.observe_checks,
        since=since,
        until=until,
        by_action={a: dict(sorted(c.items())) for a, c in sorted(counts.items())},
        nodes={a: sorted(n) for a, n in sorted(nodes.items())},
        held=held_count,
        held_nodes=sorted(held),
    )


def pool_view(p: Pool) -> dict[str, Any]:
    return {
        "name": p.name,
        "backend": p.backend,
        "gpu_model": p.gpu_model,
        "mode": p.mode,
        "observe_checks": list(p.observe_checks),
        "mode_changed_at": p.mode_changed_at.isoformat() if p.mode_changed_at else None,
        "mode_actor": p.mode_actor,
    }


def report_view(r: PoolReport) -> dict[str, Any]:
    return {
        "pool": r.pool,
        "mode": r.mode,
        "observe_checks": list(r.observe_checks),
        "since": r.since.isoformat(),
        "until": r.until.isoformat(),
        "would": {
            action: {
                "total": sum(by_check.values()),
                "by_check": by_check,
                "nodes": r.nodes[action],
            }
            for action, by_check in r.by_action.items()
        },
        "held": {"drains": r.held, "nodes": r.held_nodes},
    }
