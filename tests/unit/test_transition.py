"""The node transition table: every action from every state it applies to."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from compute.domain import Node
from compute.testing import EPOCH
from health.policy import (
    Action,
    Decision,
    DrainMode,
    DrainOwner,
    Finding,
    Lifecycle,
    NodeHealth,
    PolicyConfig,
    after,
    back_in_service,
    transition,
)
from health.policy.model import BurnInOutcome

CFG = PolicyConfig()
NOW = EPOCH + timedelta(hours=5)
ACTOR = "alice"

# The states each action is decided or asked for in (decide(), and operators' drain/resume).
APPLIES: dict[Action, tuple[Lifecycle, ...]] = {
    Action.DRAIN: (Lifecycle.IN_SERVICE, Lifecycle.DRAINING, Lifecycle.BURN_IN),
    Action.DEFER: (Lifecycle.IN_SERVICE,),
    Action.MARK_DRAINED: (Lifecycle.DRAINING,),
    Action.CONTINUE_DRAIN: (Lifecycle.DRAINING,),
    Action.START_BURN_IN: (Lifecycle.DRAINING, Lifecycle.DRAINED, Lifecycle.BURN_IN),
    Action.CHECKUP: (Lifecycle.IN_SERVICE,),
    Action.RESUME: (Lifecycle.DRAINING, Lifecycle.DRAINED, Lifecycle.BURN_IN, Lifecycle.REPAIR),
    Action.REPAIR: (Lifecycle.DRAINED, Lifecycle.BURN_IN),
    Action.BURN_IN_STALLED: (Lifecycle.BURN_IN,),
    Action.NONE: tuple(Lifecycle),
}

# Lifecycle fields after each action (state_since is NOW wherever state is given).
OWNED = {"drain_owner": DrainOwner.COMPUTECTL, "drain_actor": ACTOR, "deferred_reason": ""}
EXPECTED: dict[Action, dict[str, Any]] = {
    # An operator's drain (automated=False below): automation does not return the node.
    Action.DRAIN: {
        "state": Lifecycle.DRAINED,
        "drain_reason": "why",
        "automation_drain": False,
        **OWNED,
    },
    Action.START_BURN_IN: {"state": Lifecycle.BURN_IN, "drain_reason": "why", **OWNED},
    Action.CHECKUP: {
        "state": Lifecycle.BURN_IN,
        "drain_reason": "why",
        "automation_drain": True,
        **OWNED,
    },
    Action.REPAIR: {
        "state": Lifecycle.REPAIR,
        "drain_reason": "why",
        "automation_drain": False,
        **OWNED,
    },
    Action.RESUME: {
        "state": Lifecycle.IN_SERVICE,
        "drain_reason": "",
        "drain_owner": None,
        "drain_actor": "",
        "automation_drain": False,
        "deferred_reason": "",
    },
    Action.MARK_DRAINED: {"state": Lifecycle.DRAINED},
    Action.DEFER: {"deferred_reason": "why"},
    Action.CONTINUE_DRAIN: {},
    Action.BURN_IN_STALLED: {},
    Action.NONE: {},
}


def node(state: Lifecycle, **changes: Any) -> Node:
    health = NodeHealth(
        streaks={"xid": 2},
        finding=Finding("xid", "XID 79", fatal=True, at=EPOCH),
        burn_in_started_at=EPOCH,
        burn_in_outcome=BurnInOutcome(passed=False, evidence="slow", at=EPOCH),
        burn_in_failures=1,
        last_resumed_at=EPOCH,
        drain_blocked=("ns/pod: budget",),
    )
    base = Node(
        name="gpu-001",
        pool="p",
        rack="r",
        gpu_model="H100",
        gpu_count=8,
        state=state,
        state_since=EPOCH,
        drain_reason="computectl: earlier" if state is not Lifecycle.IN_SERVICE else "",
        drain_owner=None if state is Lifecycle.IN_SERVICE else DrainOwner.COMPUTECTL,
        drain_actor="" if state is Lifecycle.IN_SERVICE else "computectl/automation",
        automation_drain=state is not Lifecycle.IN_SERVICE,
        deferred_reason="waiting" if state is Lifecycle.IN_SERVICE else "",
        health=health,
    )
    return base.evolve(**changes)


CASES = [(a, s) for a, states in APPLIES.items() for s in states]


@pytest.mark.parametrize(("action", "state"), CASES, ids=[f"{a}-{s}" for a, s in CASES])
def test_every_action_from_every_state_it_applies_to(action: Action, state: Lifecycle) -> None:
    before = node(state)
    decision = Decision(before.name, action, "why")
    new = transition(before, decision, NOW, CFG, actor=ACTOR, automated=False)
    want = EXPECTED[action]
    fields = (
        "state",
        "drain_reason",
        "drain_owner",
        "drain_actor",
        "automation_drain",
        "deferred_reason",
    )
    for f in fields:
        assert getattr(new, f) == want.get(f, getattr(before, f)), f
    assert new.state_since == (NOW if "state" in want else before.state_since)
    # What is not lifecycle is never touched.
    assert (new.name, new.pool, new.jobs_running) == (before.name, before.pool, 0)
    if action is Action.CONTINUE_DRAIN:
        assert new.health == before.health.evolve(drain_blocked=())
    elif action in (Action.DRAIN,):
        assert new.health == after(decision, before.health, CFG, NOW).evolve(drain_blocked=())
    else:
        assert new.health == after(decision, before.health, CFG, NOW)


@pytest.mark.parametrize("state", APPLIES[Action.DRAIN])
@pytest.mark.parametrize(
    ("jobs", "mode", "blocked", "to", "jobs_after"),
    [
        (0, DrainMode.DRAIN, (), Lifecycle.DRAINED, 0),
        (2, DrainMode.DRAIN, (), Lifecycle.DRAINING, 2),
        (2, DrainMode.DOWN, (), Lifecycle.DRAINED, 0),
        (0, DrainMode.DRAIN, ("ns/pod: budget",), Lifecycle.DRAINING, 0),
        (2, DrainMode.DOWN, ("ns/pod: budget",), Lifecycle.DRAINING, 0),
    ],
)
def test_a_drain_waits_for_work_left_running(
    state: Lifecycle,
    jobs: int,
    mode: DrainMode,
    blocked: tuple[str, ...],
    to: Lifecycle,
    jobs_after: int,
) -> None:
    before = node(state, jobs_running=jobs)
    d = Decision(before.name, Action.DRAIN, "why", mode=mode)
    new = transition(before, d, NOW, CFG, actor=ACTOR, automated=True, blocked=blocked)
    assert (new.state, new.jobs_running, new.automation_drain) == (to, jobs_after, True)
    assert new.health.drain_blocked == blocked


def test_a_retried_drain_keeps_what_is_still_blocked() -> None:
    before = node(Lifecycle.DRAINING)
    d = Decision(before.name, Action.CONTINUE_DRAIN, "retry")
    new = transition(before, d, NOW, CFG, actor=ACTOR, automated=True, blocked=("a/b: x",))
    assert new.health == before.health.evolve(drain_blocked=("a/b: x",))
    assert new.state_since == before.state_since


def test_a_burn_in_keeps_whether_automation_drained_the_node() -> None:
    for automation in (True, False):
        before = node(Lifecycle.DRAINED, automation_drain=automation)
        d = Decision(before.name, Action.START_BURN_IN, "why")
        new = transition(before, d, NOW, CFG, actor=ACTOR, automated=not automation)
        assert new.automation_drain is automation


def test_back_in_service_leaves_the_health_memory_alone() -> None:
    before = node(Lifecycle.DRAINED, drain_owner=DrainOwner.EXTERNAL, drain_reason="theirs")
    new = back_in_service(before, NOW)
    assert new.health == before.health
    assert (new.state, new.state_since, new.drain_owner, new.drain_reason) == (
        Lifecycle.IN_SERVICE,
        NOW,
        None,
        "",
    )
