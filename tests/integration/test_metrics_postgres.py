"""/metrics' reads on a real PostgreSQL: the same checks as on SQLite (tests/unit/test_metrics.py),
through PostgreSQL's own JSON operators, interval arithmetic and window functions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from compute.store import Store
from tests.unit.test_metrics import (
    Scrape,
    check_fleet_matches_capacity,
    check_pool_mode_brake_and_leadership,
    check_scenario,
    check_unreadable_detection_time,
    scenario,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    """A database of its own on the test server: other tests' schemas stay as they are."""
    name = f"metrics_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = Store.open(make_url(postgres_url).set(database=name).render_as_string(False))
    try:
        assert store.engine.dialect.name == "postgresql"
        yield store
    finally:
        store.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def test_remediation_figures_on_postgres(pg_store: Store) -> None:
    scenario(pg_store)
    check_scenario(Scrape(pg_store))


def test_pool_mode_brake_and_leadership_on_postgres(pg_store: Store) -> None:
    check_pool_mode_brake_and_leadership(pg_store)


def test_fleet_aggregates_on_postgres(pg_store: Store) -> None:
    check_fleet_matches_capacity(pg_store)


def test_an_unreadable_detection_time_on_postgres(pg_store: Store) -> None:
    check_unreadable_detection_time(pg_store)
