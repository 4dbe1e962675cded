"""Properties of the remediation policy over arbitrary histories of results, burn-ins,
operators' drains and sweeps: never beyond a pool's drain budget, never a foreign drain,
and the health memory any history leaves round-trips through its stored JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from compute.testing import EPOCH, result
from health.policy import (
    Action,
    Decision,
    DrainMode,
    DrainOwner,
    Lifecycle,
    NodeHealth,
    NodeView,
    PolicyConfig,
    after,
    apply_budget,
    decide,
    drain_budget,
    observe,
)


@dataclass
class ModelNode:
    name: str
    state: Lifecycle = Lifecycle.IN_SERVICE
    owner: DrainOwner | None = None
    automation: bool = False
    jobs: bool = True
    health: NodeHealth = field(default_factory=NodeHealth)

    @property
    def voluntary(self) -> bool:
        h = self.health
        return self.state is Lifecycle.BURN_IN and h.burn_in_voluntary

    def view(self) -> NodeView:
        return NodeView(
            self.name,
            "p",
            self.state,
            self.owner,
            self.automation,
            self.jobs,
            voluntary=self.voluntary,
        )


def carry_out(n: ModelNode, d: Decision, cfg: PolicyConfig, now: object) -> None:
    """The same transitions compute.services.remediation makes."""
    n.health = after(d, n.health, cfg, now)  # type: ignore[arg-type]
    match d.action:
        case Action.DRAIN:
            n.state = (
                Lifecycle.DRAINING if n.jobs and d.mode is DrainMode.DRAIN else Lifecycle.DRAINED
            )
            n.owner, n.automation = DrainOwner.COMPUTECTL, True
        case Action.MARK_DRAINED:
            n.state = Lifecycle.DRAINED
        case Action.START_BURN_IN:
            n.state, n.owner = Lifecycle.BURN_IN, DrainOwner.COMPUTECTL
        case Action.CHECKUP:
            n.state, n.owner, n.automation = Lifecycle.BURN_IN, DrainOwner.COMPUTECTL, True
        case Action.RESUME:
            n.state, n.owner, n.automation = Lifecycle.IN_SERVICE, None, False
        case Action.REPAIR:
            n.state, n.automation = Lifecycle.REPAIR, False


step = st.one_of(
    st.tuples(
        st.just("result"),
        st.integers(0, 11),
        st.sampled_from(["pass", "warn", "fail"]),
        st.booleans(),
        st.sampled_from(["xid", "pcie", "ecc"]),
    ),
    st.tuples(st.just("burnin"), st.integers(0, 11), st.booleans()),
    st.tuples(st.just("external_drain"), st.integers(0, 11)),
    st.tuples(st.just("external_resume"), st.integers(0, 11)),
    st.tuples(st.just("jobs_end"), st.integers(0, 11)),
    st.tuples(
        st.just("sweep"),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 12),
    fraction=st.floats(0.0, 0.6),
    minimum=st.integers(0, 3),
    consecutive=st.integers(1, 4),
    steps=st.lists(step, min_size=1, max_size=120),
)
def test_no_history_drains_beyond_budget_or_touches_foreign_drains(
    size: int, fraction: float, minimum: int, consecutive: int, steps: list[tuple]
) -> None:
    cfg = PolicyConfig(
        consecutive_failures=consecutive,
        drain_budget_fraction=fraction,
        drain_budget_min_nodes=minimum,
        burn_in_max_attempts=2,
    )
    nodes = [ModelNode(f"n{i:02d}") for i in range(size)]
    budget = drain_budget(size, cfg)
    now = EPOCH
    for s in steps:
        now = now + timedelta(minutes=1)
        kind = s[0]
        if kind == "sweep":
            foreign = {n.name for n in nodes if n.owner is DrainOwner.EXTERNAL}
            decisions = apply_budget(
                [decide(n.view(), n.health, cfg, now) for n in nodes],
                {"p": [n.view() for n in nodes]},
                cfg,
            )
            for d in decisions:
                if d.acts:
                    assert d.node not in foreign, f"acted on a foreign drain: {d}"
                    carry_out(next(n for n in nodes if n.name == d.node), d, cfg, now)
            # Faults stay within the budget; voluntary burn-ins start only within it, so
            # all together never hold more than twice the budget out.
            assert sum(n.automation and not n.voluntary for n in nodes) <= budget
            assert sum(n.automation for n in nodes) <= 2 * budget
            for n in nodes:
                if n.name in foreign:
                    assert n.owner is DrainOwner.EXTERNAL and n.state is not Lifecycle.IN_SERVICE
                assert NodeHealth.from_json(n.health.to_json()) == n.health
            continue
        n = nodes[s[1] % size]
        if kind == "result":
            n.health = observe(n.health, [result(n.name, s[4], s[2], fatal=s[3], at=now)], cfg)
        elif kind == "burnin":
            n.health = observe(
                n.health,
                [result(n.name, "burnin", "pass" if s[2] else "fail", at=now, suite="burnin")],
                cfg,
            )
        elif kind == "external_drain" and n.owner is None:
            n.state, n.owner, n.automation = Lifecycle.DRAINED, DrainOwner.EXTERNAL, False
        elif kind == "external_resume" and n.owner is DrainOwner.EXTERNAL:
            n.state, n.owner = Lifecycle.IN_SERVICE, None
        elif kind == "jobs_end":
            n.jobs = False
