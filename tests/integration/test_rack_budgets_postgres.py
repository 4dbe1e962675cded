"""Rack budgets and capacity planning on a real PostgreSQL server: the migration, the
trend summed in PostgreSQL's SQL, standings written and read back, the forecast view.

The server is shared (testenv/postgres): this test works in a database of its own, made
afresh, so it never touches another test's schema."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from compute.domain import RackPower
from compute.services.capacity_plan import Addition, plan
from compute.services.forecast import slope, timed
from compute.services.rack_budgets import OVER
from compute.store import Store
from compute.store import topology as kept
from compute.testing import EPOCH, make_runtime

pytestmark = pytest.mark.integration

DATABASE = "computectl_rack_budgets"


@pytest.fixture
def own_database(postgres_url: str) -> Iterator[str]:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    yield make_url(postgres_url).set(database=DATABASE).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    admin.dispose()


def test_rack_budgets_and_forecast_on_postgres(tmp_path: Path, own_database: str) -> None:
    topology = {
        "sites": [{"name": "hel1"}],
        "rooms": [{"name": "hall-a", "site": "hel1"}],
        "racks": [{"name": "r01", "room": "hall-a", "power_budget_watts": 10_000.0}],
    }
    rt = make_runtime(tmp_path, {"database_url": own_database, "topology": topology}, racks=2)
    try:
        assert rt.store.engine.dialect.name == "postgresql"
        assert rt.datacenter is not None
        for _ in range(3):
            rt.sweep()
            rt.datacenter.advance(60)
        # Once for r01 (over now); r02 may be forecast over as the fleet warms up.
        events = rt.store.events(kinds=[OVER], limit=10)
        assert [e.detail["rack"] for e in events].count("r01") == 1
        over = set(kept.over_racks(rt.store))
        assert "r01" in over
        view = plan(rt.store, rt.settings.topology, [Addition(2, "B200", "hall-a")])
        assert {r["rack"] for r in view["racks"] if r["over_budget"]} == over
        assert view["additions"][0]["watts_source"] == "catalogue"
    finally:
        rt.close()

    # The trend PostgreSQL sums is the least-squares slope of the same points.
    store = Store.open(own_database)
    try:
        points = [
            (EPOCH + timedelta(days=9, seconds=30 * k), 20_000.0 + 7.5 * k**1.5) for k in range(40)
        ]
        with store.transaction() as tx:
            tx.add_rack_power([RackPower("rx", at, w, 0.0) for at, w in points])
        got = kept.rack_trends(store, points[0][0])["rx"]
        assert got.points == 40 and got.watts == points[-1][1]
        assert math.isclose(got.per_second, slope(timed(points)), rel_tol=1e-6)
    finally:
        store.close()
