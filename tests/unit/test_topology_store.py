"""Migration 0009 builds the tables compute/store/topology_models.py describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from compute.store import topology_models
from compute.store.engine import upgrade
from compute.store.models import Base

MINE = {
    t.__tablename__
    for t in (
        topology_models.RackDetailRow,
        topology_models.RoomDetailRow,
        topology_models.NodePlaceRow,
        topology_models.RackBudgetRow,
        topology_models.CapacitySampleRow,
    )
}


def _table(diff: Any) -> str:
    """The table a diff entry is about (entries are tuples, or lists of them)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for item in entry[1:]:
        name = getattr(item, "name", None) if not isinstance(item, str) else None
        table = getattr(item, "table", None)
        if table is not None:
            return str(table.name)
        if name is not None:
            return str(name)
        if isinstance(item, str):
            return item
    return ""


def test_the_migration_builds_the_models_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if _table(d) in MINE] == []
    assert set(Base.metadata.tables) >= MINE


def test_a_missing_table_would_be_seen(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert {_table(d) for d in diff} >= MINE
