"""The gate: observe mode and the brake for shared causes. The verdict is pure; the gate
itself runs on a store in a temporary SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compute.config_sections import BrakeSettings
from compute.domain import AUTOMATION, Event, EventKind, Node, Pool
from compute.services import incidents, pools
from compute.services.brake import Verdict, brake_verdict, suspected_cause, threshold
from compute.services.gate import DRAIN_HELD, WOULD_ACT, Gate, observed
from compute.store import Store
from compute.store import incidents as kept
from compute.store.incidents import DrainSeen, Incident
from health.policy import Action, Decision, Lifecycle

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


def node(name: str, rack: str = "r1", pool: str = "p", switch: str = "") -> Node:
    return Node(name, pool, rack, "H100", 8, Lifecycle.IN_SERVICE, T0, switch=switch)


def drain(name: str, check: str = "temperature") -> Decision:
    return Decision(name, Action.DRAIN, f"computectl: {check}: hot", fatal=True, check=check)


BRAKE = BrakeSettings()


def test_thresholds() -> None:
    assert threshold("rack", 8, BRAKE) == 4
    assert threshold("rack", 2, BRAKE) == 3  # a 2-node rack never brakes on its own
    assert threshold("rack", 7, BRAKE) == 4
    assert threshold("pool", 100, BRAKE) == BRAKE.pool_max_nodes + 1


def test_causes() -> None:
    assert suspected_cause(["temperature", "throttle", "xid"])[0] == "power_or_cooling"
    assert suspected_cause(["infiniband", "nccl_allreduce"])[0] == "network"
    assert suspected_cause(["version_drift"])[0] == "driver_rollout"
    assert suspected_cause(["xid", "ecc"])[0] == "unknown"
    assert suspected_cause(["temperature", "infiniband"])[0] == "unknown"


def test_observed() -> None:
    p = Pool("p", "slurm", "H100", mode="observe")
    assert observed(p, drain("a"))
    assert not observed(p, Decision("a", Action.MARK_DRAINED))
    checks = Pool("p", "slurm", "H100", observe_checks=("xid",))
    assert observed(checks, drain("a", "xid"))
    assert not observed(checks, drain("a", "temperature"))
    assert not observed(None, drain("a"))


def test_verdict_counts_the_window_and_the_scope() -> None:
    seen = [
        DrainSeen(f"n{i}", T0 - timedelta(minutes=1), "temperature", "p", "r1", "")
        for i in range(3)
    ]
    old = [DrainSeen("n9", T0 - timedelta(minutes=9), "temperature", "p", "r1", "")]
    elsewhere = [DrainSeen("m1", T0, "temperature", "p", "r2", "")]
    sizes = {("rack", "r1"): 8, ("pool", "p"): 32}
    v = brake_verdict(node("x"), "temperature", T0, seen + old + elsewhere, sizes, [], BRAKE)
    assert v.opens is not None and v.held_by is None
    assert (v.opens.scope_kind, v.opens.scope, v.opens.cause) == ("rack", "r1", "power_or_cooling")
    assert set(v.opens.nodes) == {"n0", "n1", "n2"}  # the held one is added as it is held
    v = brake_verdict(node("x"), "temperature", T0, seen[:2] + old, sizes, [], BRAKE)
    assert v.opens is None and v.held_by is None


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path / 'gate.db'}")
    with s.transaction() as tx:
        tx.put_topology([], [], [], [Pool("p", "slurm", "H100")])
        tx.add_nodes([node(f"n{i}", rack=f"r{i // 8}") for i in range(32)])
    return s


def drained(store: Store, name: str, check: str, at: datetime) -> None:
    """What the remediator records after a drain the gate let through."""
    with store.transaction() as tx:
        tx.add_event(Event(at, name, EventKind.DRAIN, "x", AUTOMATION, "p", {"check": check}))


def test_rack_fault_opens_one_incident_and_holds_the_rest(store: Store) -> None:
    clock = Clock()
    gate = Gate(store, clock, BRAKE)
    through = []
    for i in range(8):
        n = store.node(f"n{i}")
        assert n is not None
        out = gate.admit(n, drain(n.name))
        if out.action is Action.DRAIN:
            through.append(n.name)
            drained(store, n.name, "temperature", clock.now())
        clock.at += timedelta(seconds=5)
    assert through == ["n0", "n1", "n2"]
    (inc,) = incidents.list_incidents(store)
    assert (inc.scope_kind, inc.scope, inc.state, inc.held) == ("rack", "r0", "open", 5)
    assert set(inc.nodes) == {f"n{i}" for i in range(8)}
    held = store.events(kinds=[DRAIN_HELD])
    assert len(held) == 5 and {e.detail["incident"] for e in held} == {inc.id}
    # Asked again (the next sweep), a held node is not recorded twice.
    n7 = store.node("n7")
    assert n7 is not None
    assert gate.admit(n7, drain("n7")).action is Action.NONE
    assert len(store.events(kinds=[DRAIN_HELD])) == 5
    # Another rack is not held.
    n8 = store.node("n8")
    assert n8 is not None
    assert gate.admit(n8, drain("n8")).action is Action.DRAIN
    # Released: the held nodes drain, and the drains before the release no longer count.
    incidents.release(store, clock, inc.id, "operator:test")
    assert gate.admit(n7, drain("n7")).action is Action.DRAIN
    with pytest.raises(Exception, match="already released"):
        incidents.release(store, clock, inc.id, "operator:test")
    assert store.audit(target=f"incident/{inc.id}")[0].action == "incident.release"


def test_observe_records_once_and_enable_acts(store: Store) -> None:
    clock = Clock()
    gate = Gate(store, clock, BRAKE, mode_ttl=0)
    pools.set_mode(store, clock, "p", "observe", None, "operator:test")
    n = store.node("n1")
    assert n is not None
    for _ in range(3):
        out = gate.admit(n, drain("n1", "xid"))
        assert out.action is Action.NONE
        n = store.node("n1")
        assert n is not None
    assert n.would == "drain:xid"
    (ev,) = store.events(kinds=[WOULD_ACT])
    assert ev.detail == {
        "action": "drain",
        "check": "xid",
        "reason": "computectl: xid: hot",
        "mode": "observe",
    }
    # The decision no longer acts: forgotten; when it comes back it is news again.
    gate.admit(n, Decision("n1", Action.NONE))
    n = store.node("n1")
    assert n is not None and n.would == ""
    gate.admit(n, drain("n1", "xid"))
    assert len(store.events(kinds=[WOULD_ACT])) == 2
    rep = pools.report(store, clock, "p", timedelta(hours=24))
    assert rep.by_action == {"drain": {"xid": 1}} and rep.nodes == {"drain": ["n1"]}
    # One check observed in an enforcing pool.
    pools.set_mode(store, clock, "p", "enforce", None, "operator:test")
    pools.set_mode(store, clock, "p", "observe", "xid", "operator:test")
    n = store.node("n1")
    assert n is not None and n.would == ""
    assert gate.admit(n, drain("n1", "xid")).action is Action.NONE
    assert gate.admit(n, drain("n1", "ecc")).action is Action.DRAIN
    pools.set_mode(store, clock, "p", "enforce", "xid", "operator:test")
    assert gate.admit(n, drain("n1", "xid")).action is Action.DRAIN
    actions = [a.action for a in store.audit(target="p")]
    assert actions == ["pool.enable", "pool.observe", "pool.enable", "pool.observe"]


def test_record_pools_keeps_operators_mode(store: Store) -> None:
    from compute.config_pools import SimulatedPool, SlurmPool

    clock = Clock()
    slurm = SlurmPool(name="new", backend="slurm", gpu_model="H100")
    sim = SimulatedPool(name="sim", backend="simulated", gpu_model="H100")
    assert pools.record_pools(store, [slurm, sim], clock) == ["new", "sim"]
    modes = {p.name: p.mode for p in store.pools()}
    assert modes["new"] == "observe" and modes["sim"] == "enforce"
    pools.set_mode(store, clock, "new", "enforce", None, "operator:test")
    assert pools.record_pools(store, [slurm], clock) == []
    assert {p.name: p.mode for p in store.pools()}["new"] == "enforce"


@pytest.mark.parametrize("text", ["24h", "30m", "7d", "90s", " 1h "])
def test_windows(text: str) -> None:
    assert pools.parse_window(text) > timedelta(0)


@pytest.mark.parametrize("text", ["", "0s", "24", "h", "1y", "367d", "-1h", "1.5h"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(Exception, match="since"):
        pools.parse_window(text)


def test_verdict_switch_and_pool_scopes() -> None:
    brake = BrakeSettings(pool_max_nodes=4)
    behind = [DrainSeen(f"s{i}", T0, "infiniband", "p", f"r{i}", "leaf-1") for i in range(2)]
    sizes = {("rack", "r9"): 8, ("switch", "leaf-1"): 4, ("pool", "p"): 64}
    v = brake_verdict(node("x", "r9", switch="leaf-1"), "infiniband", T0, behind, sizes, [], brake)
    assert v.opens is not None
    assert (v.opens.scope_kind, v.opens.cause) == ("switch", "network")
    spread = [DrainSeen(f"n{i}", T0, "xid", "p", f"r{i}", "") for i in range(4)]
    v = brake_verdict(node("x", "r9"), "xid", T0, spread, sizes, [], brake)
    assert v.opens is not None and (v.opens.scope_kind, v.opens.scope) == ("pool", "p")
    assert brake_verdict(node("x", "r9"), "xid", T0, spread[:3], sizes, [], brake) == Verdict()


def test_verdict_after_release() -> None:
    seen = [DrainSeen(f"n{i}", T0, "temperature", "p", "r1", "") for i in range(3)]
    sizes = {("rack", "r1"): 8, ("pool", "p"): 64}
    released = Incident(
        1,
        "rack",
        "r1",
        "p",
        T0,
        "power_or_cooling",
        "",
        {},
        ("n0", "n1", "n2", "n3"),
        "released",
        1,
        T0 + timedelta(seconds=1),
        "operator:test",
    )
    later = T0 + timedelta(seconds=2)
    # The released incident's own nodes go ahead; the drains before it no longer count.
    assert brake_verdict(node("n3"), "temperature", later, seen, sizes, [released], BRAKE) == (
        Verdict()
    )
    assert brake_verdict(node("x"), "temperature", later, seen, sizes, [released], BRAKE) == (
        Verdict()
    )
    opened = Incident(2, "rack", "r1", "p", T0, "unknown", "", {}, (), "open", 0, None, "")
    assert brake_verdict(node("x"), "xid", later, [], sizes, [opened], BRAKE).held_by == opened


def test_one_open_incident_per_scope(store: Store) -> None:
    draft = Incident(0, "rack", "r0", "p", T0, "unknown", "", {}, ("n0",), "open", 1, None, "")
    with store.transaction() as tx:
        first = kept.open_incident(tx, draft)
    with store.transaction() as tx:
        assert kept.open_incident(tx, draft) is None
    assert first is not None
    assert [i.id for i in incidents.list_incidents(store, "open")] == [first]
