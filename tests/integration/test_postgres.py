"""The state store on a real PostgreSQL server: migrations, the sweep, reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from compute.store import Store
from compute.store.engine import upgrade
from compute.testing import make_runtime
from health.policy import Lifecycle
from tests.schema_shape import migrated, schema_of

pytestmark = pytest.mark.integration


def test_migrations_and_a_faulty_sweep_on_postgres(tmp_path: Path, clean_postgres: str) -> None:
    rt = make_runtime(tmp_path, config={"database_url": clean_postgres})
    assert rt.store.engine.dialect.name == "postgresql"
    tables = set(inspect(rt.store.engine).get_table_names())
    assert {"nodes", "check_results", "events", "audit_log", "alembic_version"} <= tables
    rt.sweep()
    rt.sweep()
    assert rt.datacenter is not None
    rt.datacenter.inject("gpu-004", "xid48", gpu=1)
    report = rt.sweep()
    assert [a["node"] for a in report.actions] == ["gpu-004"]
    node = rt.store.node("gpu-004")
    assert node is not None and node.state in (Lifecycle.DRAINING, Lifecycle.DRAINED)
    assert node.health.finding is None and node.drain_reason.startswith("computectl: xid:")
    assert node.state_since.tzinfo is not None
    assert rt.store.count_results() > 300
    rt.close()
    # Opening again runs the migrations again: nothing to do, nothing lost.
    again = Store.open(clean_postgres)
    assert again.node("gpu-004") == node
    again.close()


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    from compute.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot open the state store"):
        make_runtime(
            tmp_path, config={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/nope"}
        )


def test_a_fresh_store_on_postgres_is_what_the_migrations_build(clean_postgres: str) -> None:
    engine = create_engine(clean_postgres)
    slow = schema_of(migrated(engine))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)  # an empty database: the models' tables, stamped, under the schema lock
    assert schema_of(engine) == slow
    upgrade(engine)  # at the newest revision: nothing to do
    assert schema_of(engine) == slow
    engine.dispose()
