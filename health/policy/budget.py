"""The per-pool drain budget: automation never takes more than a share of a pool out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from health.policy.model import Action, Decision, Lifecycle, NodeView, PolicyConfig


def drain_budget(pool_size: int, cfg: PolicyConfig) -> int:
    """How many nodes of a pool automation may hold out of service at once."""
    share = math.floor(pool_size * cfg.drain_budget_fraction + 1e-9)
    return min(pool_size, max(cfg.drain_budget_min_nodes, share))


def apply_budget(
    decisions: Sequence[Decision],
    pools: Mapping[str, Sequence[NodeView]],
    cfg: PolicyConfig,
) -> list[Decision]:
    """Hold back drains beyond each pool's budget; they are reported and wait.

    Nodes already out for automated remediation (draining, drained or in
    burn-in after an automation drain) use up the budget. Fatal findings go
    first, then by node name, so the outcome does not depend on input order.

    Safety never waits behind voluntary work: nodes out for a periodic burn-in
    do not count against drains for faults (for as long as that burn-in runs the
    pool may have more out than the budget), and a periodic burn-in starts only
    where every node out, for whatever reason, still fits the budget and no
    fault drain is waiting.
    """
    pool_of = {v.name: pool for pool, views in pools.items() for v in views}
    room: dict[str, int] = {}  # for fault drains
    spare: dict[str, int] = {}  # for voluntary work
    for pool, views in pools.items():
        budget = drain_budget(len(views), cfg)
        room[pool] = budget - sum(1 for v in views if v.automation_drain and not v.voluntary)
        # Voluntary work counts every node out of service, whoever took it out.
        spare[pool] = budget - sum(1 for v in views if v.state is not Lifecycle.IN_SERVICE)
    drains = sorted(
        (d for d in decisions if d.action is Action.DRAIN), key=lambda d: (not d.fatal, d.node)
    )
    allowed: set[str] = set()
    waiting: set[str] = set()
    for d in drains:
        home = pool_of.get(d.node)
        if home is not None and room[home] > 0:
            room[home] -= 1
            spare[home] -= 1
            allowed.add(d.node)
        elif home is not None:
            waiting.add(home)
    # Periodic burn-ins take what room the fault drains left, a few per pool per sweep;
    # one that does not fit simply waits for a later sweep (nothing is wrong with the node).
    checkups: dict[str, int] = {}
    for d in sorted((d for d in decisions if d.action is Action.CHECKUP), key=lambda d: d.node):
        home = pool_of.get(d.node)
        if home is None or spare[home] <= 0 or home in waiting:
            continue
        if checkups.get(home, 0) >= cfg.periodic_burn_in_per_sweep:
            continue
        checkups[home] = checkups.get(home, 0) + 1
        spare[home] -= 1
        allowed.add(d.node)
    out: list[Decision] = []
    for d in decisions:
        if d.action is Action.CHECKUP and d.node not in allowed:
            out.append(Decision(d.node, Action.NONE))
            continue
        if d.action is Action.DRAIN and d.node not in allowed:
            pool = pool_of.get(d.node) or "?"
            budget = drain_budget(len(pools.get(pool, ())), cfg)
            out.append(
                Decision(
                    d.node,
                    Action.DEFER,
                    f"drain budget of pool {pool} exhausted "
                    f"({budget - room.get(pool, 0)}/{budget} nodes out "
                    f"for remediation); waiting: {d.reason}",
                    mode=d.mode,
                    fatal=d.fatal,
                    check=d.check,
                )
            )
        else:
            out.append(d)
    return out
