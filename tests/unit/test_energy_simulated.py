"""On the simulated datacenter: the energy of tenants, idle and out of service over a
window adds up to the fleet's measured energy (issue 14's acceptance), and a gap longer
than [energy] max_gap_seconds is reported, not counted."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from compute.runtime import Runtime
from compute.services import energy
from compute.store import energy as kept
from compute.testing import EPOCH, make_runtime

MAX_GAP = 600.0
PUE = 1.25
NODES = 8


def measured_mj_per_s(rt: Runtime) -> float:
    """What the fleet draws as the sweep read it (W = J/s), in mJ/s."""
    return sum(n.power_watts for n in rt.store.nodes() if n.power_watts > 0) * 1000


def sweep(rt: Runtime) -> list[str]:
    """The sweep, then energy's after-sweep hook (as Runtime.sweep runs it; the other
    hooks are other features')."""
    return rt.sweeper.run().errors + energy.after_sweep(rt)


def build(tmp: Path) -> Runtime:
    return make_runtime(
        tmp,
        {"energy": {"max_gap_seconds": MAX_GAP, "pue": PUE}},
        persist=False,
        racks=2,
        nodes_per_rack=NODES // 2,
        fault_rate_per_node_hour=3.0,
    )


@settings(max_examples=15, deadline=None)
@given(steps=st.lists(st.integers(1, 1_500), min_size=2, max_size=6))
def test_tenants_idle_and_out_of_service_add_up_to_the_fleet(steps: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="h14c-energy-") as tmp:
        rt = build(Path(tmp))
        try:
            sweep(rt)  # the first sweep marks where counting starts
            expected, gaps = 0.0, 0
            for seconds in steps:
                assert rt.datacenter is not None
                rt.datacenter.advance(seconds)
                errors = sweep(rt)
                if seconds > MAX_GAP:
                    gaps += 1
                    assert any("not counted" in e for e in errors)
                else:
                    expected += measured_mj_per_s(rt) * seconds
            end = rt.clock.now() + timedelta(hours=1)
            rows = kept.hours(rt.store, EPOCH, end)
            it = sum(r.it_mj for r in rows)
            # Each node's energy is rounded to a whole mJ once per hour piece; its parts
            # add up to that exactly.
            pieces = NODES * 2 * len(steps)
            assert abs(it - expected) <= pieces
            assert abs(sum(r.facility_mj for r in rows) - it * PUE) <= 4 * pieces
            assert {r.holder for r in rows} <= set(kept.HOLDERS)
            assert len(kept.gaps(rt.store, EPOCH, end)) == gaps
            # The counters of /metrics say the same.
            assert sum(t[4] for t in kept.totals(rt.store)) == it
        finally:
            rt.close()


def test_the_simulated_tenants_hold_energy(tmp_path: Path) -> None:
    rt = build(tmp_path)
    try:
        for _ in range(3):
            assert rt.datacenter is not None
            sweep(rt)
            rt.datacenter.advance(120)
        sweep(rt)
        rows = kept.hours(rt.store, EPOCH, rt.clock.now())
        tenants = {r.tenant for r in rows if r.holder == kept.TENANT}
        allocated = {a.tenant for a in rt.store.allocations()}
        assert tenants and tenants >= allocated
        assert all(r.it_mj > 0 for r in rows if r.holder == kept.TENANT)
    finally:
        rt.close()
