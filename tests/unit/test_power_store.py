"""Power in the store: the migration builds the tables the models describe, series are
folded and bounded, and the simulated fleet keeps its GPUs' limits across processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from compute.store import Store
from compute.store import power as readings
from compute.store.engine import upgrade
from compute.store.power import Latest, Retention
from compute.store.power_models import PowerSampleRow
from compute.testing import make_runtime
from health.simulated import SimulatedTelemetry

T0 = datetime(2026, 1, 5, tzinfo=UTC)
RET = Retention(
    every=timedelta(seconds=60), raw=timedelta(hours=24), bucket=3600,
    keep=timedelta(days=30), max_rows=100, stale=timedelta(minutes=15),
)  # fmt: skip


def test_migration_0008_builds_the_power_tables(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from compute.store import power_models
    from compute.store.models import Base

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    assert power_models.PowerCapRow.metadata is Base.metadata
    mine = {t.name for t in Base.metadata.sorted_tables if t.name.startswith("power")}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if any(name in repr(d) for name in mine)]
    assert mine == {"power_latest", "power_samples", "power_caps"} and ours == []


def _store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'state.db'}")


def test_samples_every_interval_then_folded_and_bounded(tmp_path: Path) -> None:
    store = _store(tmp_path)
    # Reports every 30 s for 10 minutes (one raw sample a minute is kept), then every 30
    # minutes for two days.
    times = [*range(0, 600, 30), *range(1800, 2 * 86_400, 1800)]
    for i in times:
        at = T0 + timedelta(seconds=i)
        latest = Latest("n1", "r1", at, 1000.0 + (i % 3600), None, "", "", ())
        readings.put_readings(store, [latest], RET)
    with Session(store.engine) as s:
        q = select(func.count()).where(PowerSampleRow.kind == "node")
        raw = s.scalar(q.select_from(PowerSampleRow))
    assert raw == 10 + 95
    removed = readings.compact(store, T0 + timedelta(days=2), RET)
    kept = readings.series(store, "node", "n1", T0 - timedelta(days=1), limit=1000)
    buckets = [s for s in kept if s.step == 3600]
    assert buckets and all(s.samples >= 1 for s in buckets) and removed > 0
    assert all(s.at >= T0 + timedelta(days=1) for s in kept if s.step == 0)
    assert len(kept) <= RET.max_rows
    # The rack's sum follows the node's.
    assert readings.series(store, "rack", "r1", T0, limit=5)


def test_a_series_never_holds_more_than_its_cap(tmp_path: Path) -> None:
    store = _store(tmp_path)
    rows = [("n1", "r1", 500.0)]
    for i in range(250):
        readings.add_samples(store, rows, T0 + timedelta(minutes=i))
    readings.compact(store, T0 + timedelta(hours=5), RET)
    assert len(readings.series(store, "node", "n1", T0, limit=1000)) == RET.max_rows
    newest = readings.series(store, "node", "n1", T0, limit=1)[0]
    assert newest.at == T0 + timedelta(minutes=249)


def test_simulated_limits_persist_and_hold_the_draw(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "data", racks=1, nodes_per_rack=2)
    dc = rt.datacenter
    assert dc is not None
    with dc.session():
        assert dc.fleet.set_power_limit("gpu-002", 3, 50.0) == 200.0  # clamped to the min
    again = make_runtime(tmp_path / "data", racks=1, nodes_per_rack=2)
    assert again.datacenter is not None
    with again.datacenter.session():
        fleet = again.datacenter.fleet
        n = fleet.nodes["gpu-002"]
        assert n.power_limits is not None and n.power_limits[3] == 200.0
        fleet.set_load("gpu-002", [1.0] * 8)
    snap = SimulatedTelemetry(again.datacenter.fleet_access).snapshot("gpu-002", None)
    g3 = snap.gpus[3]
    assert g3.power_limit_watts == 200.0 and g3.power_watts <= 200.0
    assert "sw_power_cap" in g3.throttle_reasons
    rt.close()
    again.close()
