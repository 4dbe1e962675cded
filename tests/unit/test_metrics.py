"""/metrics' collector on a store in a temporary SQLite file, written through the store's API:
what each remediation figure counts, and that the database's aggregates say what the
node-by-node capacity does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from compute.config import Settings
from compute.domain import Allocation, Event, Node, Pool, Rack, Room, Site
from compute.metrics import StoreCollector
from compute.metrics.tally import EventFigures, EventTally
from compute.services.capacity import capacity
from compute.store import Store, leases
from compute.store import incidents as kept
from compute.store.incidents import Incident
from compute.store.metrics_reads import ALL
from health.policy import DrainOwner, Lifecycle, PolicyConfig

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
OPERATOR = "alice"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


class Scrape:
    """One scrape, read the way Prometheus would."""

    def __init__(self, store: Store, leading: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store, PolicyConfig(), Settings(), leading=leading))

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def names(self, prefix: str) -> set[str]:
        return {
            s.name
            for family in self.registry.collect()
            for s in family.samples
            if s.name.startswith(prefix)
        }


def event(kind: str, node: str = "n1", at: datetime = T0, **kw: Any) -> Event:
    detail = kw.pop("detail", {})
    return Event(at=at, node=node, kind=kind, pool=kw.pop("pool", "train"), detail=detail, **kw)


def fault_drain(node: str, at: datetime, delay: float | None, fatal: bool = True) -> Event:
    detail: dict[str, Any] = {"check": "xid", "fatal": fatal, "mode": "drain"}
    if delay is not None:
        detail["detected_at"] = (at - timedelta(seconds=delay)).isoformat()
    return event("drain", node, at, reason="computectl: xid: 79", detail=detail)


def write(store: Store, *events: Event) -> None:
    with store.transaction() as tx:
        for e in events:
            tx.add_event(e)


def scenario(store: Store) -> None:
    """Events of every kind the figures read. This and the check_* functions also run on
    PostgreSQL (tests/integration/test_metrics_postgres.py)."""
    write(
        store,
        fault_drain("n1", T0, 0.4),
        fault_drain("n2", T0, 3.0, fatal=False),
        fault_drain("n3", T0, None),  # recorded before drains carried detected_at
        # A retry moving work the first drain left running: not a drain of its own.
        event("drain", "n1", T0 + timedelta(seconds=30), detail={"moved": ["job 7"]}),
        event(
            "drain",
            "n4",
            reason="computectl: operator: rma",
            actor=OPERATOR,
            detail={"check": None, "fatal": False, "detected_at": T0.isoformat()},
        ),
        event("drain", "n5", reason="adopted: computectl: xid: 79", actor="backend"),
        event("drain", "n6", detail={"check": "nvlink", "cause": "brake_released"}),
        event("burn_in_started", "n7", reason="computectl: burn-in: periodic, never passed one"),
        event(
            "burn_in_started", "n8", reason="computectl: burn-in: periodic, last passed 2026-01-01"
        ),
        event("burn_in_started", "n1", reason="computectl: burn-in: after drain"),
        event("resume", "n1", T0 + timedelta(minutes=119), reason="burn-in passed"),
        event("resume", "n9", T0, reason="burn-in passed"),  # a checkup's end: no drain before
        event("would_act", "n10", pool="new", detail={"action": "drain", "check": "xid"}),
        event("would_act", "n11", pool="new", detail={"action": "drain", "check": "xid"}),
        event("would_act", "n12", pool="new", detail={"action": "resume", "check": None}),
        event("drain_held", "n13", detail={"incident": 1, "action": "drain", "check": "xid"}),
    )


def check_scenario(scrape: Scrape) -> None:
    d2d = "computectl_detection_to_drain_seconds"
    assert scrape(f"{d2d}_count", pool="train") == 2
    assert scrape(f"{d2d}_bucket", pool="train", le="0.25") == 0
    assert scrape(f"{d2d}_bucket", pool="train", le="0.5") == 1
    assert scrape(f"{d2d}_bucket", pool="train", le="2.0") == 1
    assert scrape(f"{d2d}_bucket", pool="train", le="5.0") == 2
    assert scrape(f"{d2d}_sum", pool="train") == pytest.approx(3.4, abs=1e-3)

    ttr = "computectl_time_to_repair_seconds"
    assert scrape(f"{ttr}_count", pool="train") == 1
    assert scrape(f"{ttr}_bucket", pool="train", le="3600.0") == 0
    assert scrape(f"{ttr}_bucket", pool="train", le="7200.0") == 1
    assert scrape(f"{ttr}_sum", pool="train") == pytest.approx(7140, abs=1e-2)

    drains = {
        ("xid", "fatal"): 2,  # n3 too: counted, only not timed
        ("xid", "consecutive"): 1,
        ("", "operator"): 1,
        ("", "adopted"): 1,
        ("nvlink", "brake_released"): 1,
        ("", "burn_in"): 1,
        ("", "periodic"): 1,
    }
    for (check, cause), n in drains.items():
        assert scrape("computectl_drains_total", pool="train", check=check, cause=cause) == n
    assert scrape("computectl_drains_total", pool="train", check="", cause="consecutive") is None

    would = "computectl_would_act_total"
    assert scrape(would, pool="new", action="drain", check="xid") == 2
    assert scrape(would, pool="new", action="resume", check="") == 1
    assert scrape("computectl_drains_held_total", pool="train") == 1


def test_remediation_figures_from_events(store: Store) -> None:
    scenario(store)
    check_scenario(Scrape(store))


def test_a_drain_with_an_unreadable_detection_time_is_left_out(store: Store) -> None:
    check_unreadable_detection_time(store)


def check_unreadable_detection_time(store: Store) -> None:
    scenario(store)
    for bad in ("2026-13-45T10:00:00+00:00", "not a time"):
        detail = {"check": "xid", "fatal": True, "detected_at": bad}
        write(store, event("drain", "n14", detail=detail))
    scrape = Scrape(store)
    assert scrape("computectl_detection_to_drain_seconds_count", pool="train") == 2
    assert scrape("computectl_drains_total", pool="train", check="xid", cause="fatal") == 4


def test_pruning_keeps_the_events_the_counters_are_built_from(store: Store) -> None:
    scenario(store)
    with store.transaction() as tx:
        tx.prune(T0 + timedelta(days=365))
    check_scenario(Scrape(store))


def test_figures_only_grow_as_events_are_added(store: Store) -> None:
    scenario(store)
    before = Scrape(store)
    write(store, fault_drain("n1", T0 + timedelta(hours=3), 0.2))
    after = Scrape(store)
    name = "computectl_detection_to_drain_seconds_bucket"
    for le in ("0.1", "0.25", "0.5", "1.0", "2.0", "5.0", "+Inf"):
        assert (after(name, pool="train", le=le) or 0) >= (before(name, pool="train", le=le) or 0)
    assert after(name, pool="train", le="0.25") == 1


def test_pool_mode_brake_and_leadership(store: Store) -> None:
    check_pool_mode_brake_and_leadership(store)


def check_pool_mode_brake_and_leadership(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_topology(
            [], [], [], [Pool("train", "simulated", "H100"), Pool("new", "simulated", "H100")]
        )
        kept.set_pool_mode(tx, Pool("new", "simulated", "H100", mode="observe"))
    opened = []
    with store.transaction() as tx:
        for scope in ("r01", "r02"):
            draft = Incident(
                0, "rack", scope, "train", T0, "rack_power", "", {}, (), "open", 0, None, ""
            )
            opened.append(kept.open_incident(tx, draft))
    with store.transaction() as tx:
        assert opened[1] is not None and kept.release(tx, opened[1], T0, OPERATOR)
    assert leases.acquire(store.engine, "control-plane", "replica-a", 15.0) is not None

    class Leading:
        def acting(self) -> bool:
            return True

    scrape = Scrape(store, leading=Leading())
    assert scrape("computectl_pool_observe", pool="new") == 1
    assert scrape("computectl_pool_observe", pool="train") == 0
    engaged = "computectl_brake_engaged"
    assert scrape(engaged, scope_kind="rack", scope="r01", pool="train") == 1
    assert scrape(engaged, scope_kind="rack", scope="r02", pool="train") is None
    assert scrape("computectl_incidents_open") == 1
    expires = scrape(
        "computectl_leader_lease_expires_timestamp_seconds",
        lease="control-plane",
        holder="replica-a",
    )
    assert expires is not None and expires > datetime.now(UTC).timestamp()
    assert scrape("computectl_leader_epoch", lease="control-plane") == 1
    assert scrape("computectl_replica_leading") == 1
    # Without leadership wired the process acts alone: no per-replica gauge.
    assert Scrape(store).names("computectl_replica_leading") == set()


def test_fleet_aggregates_match_the_node_by_node_capacity(store: Store) -> None:
    check_fleet_matches_capacity(store)


def check_fleet_matches_capacity(store: Store) -> None:
    states = list(Lifecycle)
    nodes = [
        Node(
            name=f"gpu-{i:03d}",
            pool="train" if i % 3 else "infer",
            rack=f"r{i // 8}",
            gpu_model="H100" if i % 5 else "L40S",
            gpu_count=8 if i % 7 else 4,
            state=states[i % len(states)],
            state_since=T0,
            # Out of range on purpose: the split clamps to what the node has.
            gpus_allocated=(i % 11) - 1,
            automation_drain=i % 4 == 0,
            deferred_reason="budget" if i % 6 == 0 else "",
            drain_reason="computectl: xid: 79" if i % 2 else "",
            drain_owner=DrainOwner.COMPUTECTL if i % 2 else None,
        )
        for i in range(60)
    ]
    allocations = [Allocation("t1", n.pool, n.name, 2, f"j{n.name}") for n in nodes[::3]]
    allocations.append(Allocation("t2", "train", "gone-node", 1, "j-gone"))
    with store.transaction() as tx:
        tx.put_topology([Site("s")], [Room("room", "s")], [Rack("r0", "room", 1e4)], [])
        tx.add_nodes(nodes)
        tx.replace_allocations(allocations)
    scrape = Scrape(store)
    cap = capacity(store.nodes(), store.allocations())
    for row in cap.rows:
        labels = {"pool": row.pool, "gpu_model": row.gpu_model, "state": row.state}
        assert scrape("computectl_gpus", **labels) == row.gpus
    assert len(
        [s for f in scrape.registry.collect() if f.name == "computectl_gpus" for s in f.samples]
    ) == len(cap.rows)
    assert scrape("computectl_gpus_installed") == cap.installed
    for t in cap.tenants:
        labels = {"tenant": t.tenant, "pool": t.pool, "gpu_model": t.gpu_model}
        assert scrape("computectl_tenant_gpus_allocated", **labels) == t.gpus
    for pool in ("train", "infer"):
        members = [n for n in nodes if n.pool == pool]
        assert scrape("computectl_remediation_nodes", pool=pool) == sum(
            n.automation_drain for n in members
        )
        assert scrape("computectl_drain_deferred_nodes", pool=pool) == sum(
            bool(n.deferred_reason) for n in members
        )
        for state in Lifecycle:
            assert scrape("computectl_nodes", pool=pool, state=state.value) == sum(
                n.state is state for n in members
            )
    out = [n for n in nodes if n.state not in (Lifecycle.IN_SERVICE, Lifecycle.PROVISIONING)]
    info = [
        s
        for f in scrape.registry.collect()
        if f.name == "computectl_node_drain_info"
        for s in f.samples
    ]
    assert sorted(s.labels["node"] for s in info) == sorted(n.name for n in out)


def test_settled_events_are_counted_once_and_newer_ones_at_every_scrape(store: Store) -> None:
    now = [0.0]
    tally = EventTally(settle=300.0, clock=lambda: now[0])
    scenario(store)
    assert tally.figures(store) == EventFigures.read(store, ALL)
    now[0] = 301.0  # the scenario's events are settled from here on
    write(store, fault_drain("n2", T0 + timedelta(hours=1), 0.2))
    write(store, event("resume", "n2", T0 + timedelta(hours=5)))
    assert tally.figures(store) == EventFigures.read(store, ALL)
    now[0] = 700.0
    write(store, event("drain_held", "n14"), event("would_act", "n15", pool="new"))
    figures = tally.figures(store)
    assert figures == EventFigures.read(store, ALL)
    assert figures.held == {"train": 2} and figures.repair["train"].count == 2
    assert figures.kinds[("new", "would_act")] == 4
    assert Scrape(store)("computectl_events_total", pool="train", kind="resume") == 3


def test_the_registry_reads_leadership_from_the_runtime(tmp_path: Path) -> None:
    from compute.metrics import metrics_registry
    from compute.testing import make_runtime

    rt = make_runtime(tmp_path, persist=False)
    try:
        assert metrics_registry(rt).get_sample_value("computectl_replica_leading") is None

        class Follower:
            def acting(self) -> bool:
                return False

        rt.leadership = Follower()
        assert metrics_registry(rt).get_sample_value("computectl_replica_leading") == 0
    finally:
        rt.close()
