"""Rack budgets that act, on the simulated datacenter: a rack pushed over its budget raises
one event, holds burn-ins there, and (policy on) caps its GPUs; back under, one event and the
policy's caps reverted. The budget is pushed by the configuration ([topology] racks), as an
operator lowering it would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from compute.domain import EventKind
from compute.runtime import Runtime
from compute.services import power_caps
from compute.services.gate import MODE_TTL_SECONDS, POWER_HELD
from compute.services.rack_budgets import OVER, UNDER
from compute.store import topology as kept
from compute.testing import make_runtime
from health.policy import Lifecycle

pytestmark = pytest.mark.integration

ROOM = {"sites": [{"name": "hel1"}], "rooms": [{"name": "hall-a", "site": "hel1"}]}


def config(budget: float, rack: str, **topology: Any) -> dict[str, Any]:
    racks = [
        {"name": r, "room": "hall-a", "power_budget_watts": budget if r == rack else 100_000.0}
        for r in ("r01", "r02", "r03")
    ]
    return {
        "remediation": {"periodic_burn_in_days": 0, "drain_budget_fraction": 1.0},
        "topology": {**ROOM, "racks": racks, **topology},
    }


def runtime(path: Path, budget: float, rack: str = "r01", **topology: Any) -> Runtime:
    # Three racks (r03 the inference pool's) with budgets no sweep reaches but ``rack``'s.
    return make_runtime(path, config(budget, rack, **topology), racks=3, inference_racks=1)


def events(rt: Runtime, kind: str) -> list[Any]:
    return rt.store.events(kinds=[kind], limit=100)


def test_a_rack_over_budget_raises_one_event_and_holds_burn_in_there(tmp_path: Path) -> None:
    rt = runtime(tmp_path, 100_000.0)
    rt.sweep()
    rt.sweep()
    assert events(rt, OVER) == [] and all(not s.over for s in kept.standings(rt.store))
    rt.close()

    rt = runtime(tmp_path, 10_000.0)  # the operator lowers r01's budget below its draw
    try:
        rt.sweep()
        rt.sweep()
        (over,) = events(rt, OVER)  # once, not once per sweep
        assert over.detail["rack"] == "r01" and over.detail["limit_watts"] == 10_000.0
        assert "rack r01 over its power budget" in over.reason
        assert set(kept.over_racks(rt.store)) == {"r01"}
        # A faulty node in r01 drains, and its burn-in waits; one in r02 goes ahead.
        assert rt.datacenter is not None
        in_r01 = next(n.name for n in rt.store.nodes() if n.rack == "r01")
        in_r02 = next(n.name for n in rt.store.nodes() if n.rack == "r02")
        rt.datacenter.inject(in_r01, "xid79")
        rt.datacenter.inject(in_r02, "xid79")
        for _ in range(3):
            rt.sweep()
        started = {e.node for e in events(rt, EventKind.BURN_IN_STARTED)}
        assert in_r02 in started and in_r01 not in started
        node = rt.store.node(in_r01)
        assert node is not None and node.state is Lifecycle.DRAINED
        (held,) = events(rt, POWER_HELD)  # once per node and decision
        assert (held.node, held.reason) == (in_r01, "rack r01 over its power budget")
    finally:
        rt.close()

    rt = runtime(tmp_path, 100_000.0)  # budget raised: back under, burn-in goes ahead
    try:
        rt.sweep()
        (under,) = events(rt, UNDER)
        assert under.detail["rack"] == "r01"
        assert kept.over_racks(rt.store) == {}
        time.sleep(MODE_TTL_SECONDS + 0.1)  # the gate reads standings at most this often
        rt.sweep()
        assert in_r01 in {e.node for e in events(rt, EventKind.BURN_IN_STARTED)}
    finally:
        rt.close()


def test_the_forecast_and_over_flag_reach_metrics(tmp_path: Path) -> None:
    from compute.metrics import racks

    rt = runtime(tmp_path, 10_000.0)
    try:
        rt.sweep()
        found = {
            (m.name, s.labels.get("rack", s.labels.get("room"))): s.value
            for m in racks.metrics(rt.store, rt.settings)
            for s in m.samples
        }
        assert found[("computectl_rack_over_budget", "r01")] == 1.0
        assert found[("computectl_rack_over_budget", "r02")] == 0.0
        assert found[("computectl_rack_power_forecast_watts", "r01")] > 10_000.0
        assert found[("computectl_room_power_limit_watts", "hall-a")] == 210_000.0
    finally:
        rt.close()


def test_policy_caps_the_over_racks_gpus_and_reverts_them_once_under(tmp_path: Path) -> None:
    from compute.store import power_caps as caps_kept

    rt = runtime(tmp_path, 10_000.0, "r03", cap_gpus=True, cap_gpu_watts=350.0)
    rt.sweep()
    operator = next(n.name for n in rt.store.nodes() if n.rack == "r03")
    try:
        # An operator's own cap in the rack (after the policy's first): the policy leaves
        # it alone from then on and never reverts it.
        power_caps.request_caps(rt, [operator], 500.0, actor="operator:alice", reason="test")
        for _ in range(3):
            rt.sweep()  # over; caps requested; the simulated agents apply and read them back
        (st,) = [s for s in kept.standings(rt.store) if s.rack == "r03"]
        assert st.over and st.capped
        ours = [c for c in caps_kept.listed(rt.store, nodes=st.capped) if c.source == "policy"]
        assert {c.node for c in ours} == set(st.capped)
        applied = [c for c in ours if c.state == caps_kept.APPLIED]
        assert applied and all(set(c.after.values()) == {350.0} for c in applied)
    finally:
        rt.close()
    rt = runtime(tmp_path, 100_000.0, "r03", cap_gpus=True)
    try:
        for _ in range(3):
            rt.sweep()
        (st,) = [s for s in kept.standings(rt.store) if s.rack == "r03"]
        assert not st.over and st.capped == ()
        mine = {c.id: c for c in caps_kept.listed(rt.store, ids=[c.id for c in ours])}
        # The operator's later cap took the place of the policy's on that node (superseded);
        # every other cap of the policy's is reverted, the limits restored.
        done = (caps_kept.REVERTED, caps_kept.CANCELLED)
        assert {c.node: c.state for c in mine.values() if c.state not in done} in (
            {},
            {operator: caps_kept.SUPERSEDED},
        )
        theirs = [c for c in caps_kept.listed(rt.store, nodes=[operator]) if c.source != "policy"]
        assert theirs and all(c.state in caps_kept.ACTIVE for c in theirs)
    finally:
        rt.close()
