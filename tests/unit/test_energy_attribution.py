"""Energy per tenant: a node's energy split by GPUs among its tenants, idle and out of
service, in whole millijoules that add up to it (compute/services/energy.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from compute.config_energy import EnergySettings
from compute.domain import Allocation, Node
from compute.services.energy import accrue, attribute, largest_remainder
from compute.store import Store
from compute.store import energy as kept
from health.policy import Lifecycle

T0 = datetime(2026, 3, 1, 9, 50, tzinfo=UTC)


def node(name: str, watts: float, gpus: int = 8, state: Lifecycle = Lifecycle.IN_SERVICE) -> Node:
    return Node(name, "training", "r01", "H100", gpus, state, T0, power_watts=watts)


def attr(
    nodes: list[Node], allocations: list[Allocation], pue: float, start: datetime, end: datetime
) -> dict[kept.Key, tuple[int, int, int]]:
    """`attribute` over domain nodes and allocations, as the store reads them."""
    metered = [
        kept.Metered(
            n.name, n.pool, n.rack, n.gpu_model, n.gpu_count,
            n.state is Lifecycle.IN_SERVICE, n.power_watts,
        )
        for n in nodes
    ]  # fmt: skip
    held = [kept.Held(a.tenant, a.node, a.gpus) for a in allocations]
    return attribute(metered, held, lambda _n: pue, start, end)


@given(st.integers(0, 10**12), st.lists(st.integers(0, 64), min_size=1).filter(any))
def test_largest_remainder_adds_up_and_stays_within_one_of_the_share(
    total: int, weights: list[int]
) -> None:
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    for p, w in zip(parts, weights, strict=True):
        assert abs(p - total * w / sum(weights)) < 1


def test_tenants_pay_their_gpus_share_host_included_and_the_rest_is_idle() -> None:
    end = T0 + timedelta(minutes=5)  # 09:50 - 09:55, one hour
    parts = attr(
        [node("n1", 8000.0)],
        [
            Allocation("acme", "training", "n1", 4, "j1"),
            Allocation("beta", "training", "n1", 2, "j2"),
        ],
        1.5,
        T0,
        end,
    )
    hour = T0.replace(minute=0)
    total = 8000 * 300 * 1000  # mJ
    assert parts[(kept.TENANT, "acme", "training", "H100", hour)][0] == total // 2
    assert parts[(kept.TENANT, "beta", "training", "H100", hour)][0] == total // 4
    idle = parts[(kept.IDLE, "", "training", "H100", hour)]
    assert idle[0] == total // 4
    assert idle[1] == round(total // 4 * 1.5)
    assert idle[2] == 2 * 300 * 1_000_000  # two idle GPUs for 300 s


def test_an_interval_across_an_hour_is_cut_at_the_hour_and_out_of_service_is_kept_apart() -> None:
    parts = attr(
        [node("n1", 1000.0, state=Lifecycle.DRAINING)],
        [Allocation("acme", "training", "n1", 8, "j1")],
        1.0,
        T0,
        T0 + timedelta(minutes=20),
    )
    ten, eleven = T0.replace(minute=0), T0.replace(minute=0) + timedelta(hours=1)
    assert parts[(kept.TENANT, "acme", "training", "H100", ten)][0] == 1000 * 600 * 1000
    assert parts[(kept.TENANT, "acme", "training", "H100", eleven)][0] == 1000 * 600 * 1000
    # Its job holds all 8 GPUs of the draining node: nothing left out of service.
    assert not [k for k in parts if k[0] == kept.OUT_OF_SERVICE]
    drained = attr(
        [node("n2", 500.0, state=Lifecycle.DRAINED)],
        [],
        1.0,
        T0,
        T0 + timedelta(seconds=10),
    )
    assert list(drained.values()) == [(5_000_000, 5_000_000, 80_000_000)]
    assert next(iter(drained))[0] == kept.OUT_OF_SERVICE


def test_unmeasured_nodes_and_overcommitted_allocations() -> None:
    parts = attr(
        [node("n0", 0.0), node("n1", float("nan")), node("n2", 100.0, gpus=2)],
        [Allocation("acme", "training", "n2", 3, "j1")],
        1.0,
        T0,
        T0 + timedelta(seconds=1),
    )
    # n0 and n1 measured nothing; n2's allocations exceed its GPUs: all to the tenant.
    assert list(parts) == [(kept.TENANT, "acme", "training", "H100", T0.replace(minute=0))]
    assert parts[next(iter(parts))][0] == 100_000


def _store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'e.db'}")


def test_an_interval_is_counted_once_and_a_long_gap_not_at_all(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        with store.transaction() as tx:
            tx.put_node(node("n1", 1000.0))
        cfg = EnergySettings(max_gap_seconds=600)
        assert accrue(store, cfg, T0) == []  # the first sweep marks the start
        assert accrue(store, cfg, T0 + timedelta(seconds=60)) == []
        # A replica that read the same mark adds nothing: the mark moved.
        stale = {(kept.IDLE, "", "training", "H100", T0.replace(minute=0)): (1, 1, 1)}
        assert not kept.add(store, T0, T0 + timedelta(seconds=60), stale)
        assert sum(t[4] for t in kept.totals(store)) == 1000 * 60 * 1000
        # 20 minutes without a sweep: reported, recorded, not counted.
        errors = accrue(store, cfg, T0 + timedelta(seconds=1260))
        assert len(errors) == 1 and "not counted" in errors[0]
        assert [g.start for g in kept.gaps(store, T0, T0 + timedelta(hours=2))] == [
            T0 + timedelta(seconds=60)
        ]
        assert sum(t[4] for t in kept.totals(store)) == 1000 * 60 * 1000
        # Counting goes on from the gap's end.
        assert accrue(store, cfg, T0 + timedelta(seconds=1270)) == []
        assert sum(t[4] for t in kept.totals(store)) == 1000 * 70 * 1000
    finally:
        store.close()


def test_hours_past_retention_go_and_the_counters_stay(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        with store.transaction() as tx:
            tx.put_node(node("n1", 500.0))
        cfg = EnergySettings(retention_days=1)
        accrue(store, cfg, T0)
        accrue(store, cfg, T0 + timedelta(seconds=10))
        assert kept.hours(store, T0 - timedelta(days=1), T0 + timedelta(days=3))
        kept.start(store, T0)  # a mark exists: this does nothing
        kept.forget(store, T0 + timedelta(days=2))
        assert kept.hours(store, T0 - timedelta(days=1), T0 + timedelta(days=3)) == []
        assert sum(t[4] for t in kept.totals(store)) == 500 * 10 * 1000
    finally:
        store.close()
