"""The store's fast path knows the newest migration; a store at it opens without Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from compute.store.engine import HEAD_REVISION, _revision, alembic_config, upgrade


def test_head_revision_is_alembics_head(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == HEAD_REVISION


def test_upgrade_reaches_head_then_is_a_no_op(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert _revision(engine) is None
    upgrade(engine)
    assert _revision(engine) == HEAD_REVISION
    upgrade(engine)
    assert _revision(engine) == HEAD_REVISION


def test_migrations_build_the_tables_the_models_describe(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from compute.store.schema import metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata())
    assert diff == []
