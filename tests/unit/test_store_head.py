"""The store's fast path knows the newest migration; a store at it opens without Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from compute.store.engine import HEAD_REVISION, _revision, alembic_config, upgrade
from tests.schema_shape import migrated, schema_of


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


def test_a_fresh_store_is_what_the_migrations_build(tmp_path: Path) -> None:
    fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(fresh)  # an empty database: the models' tables, stamped, without Alembic
    slow = migrated(create_engine(f"sqlite:///{tmp_path / 'migrated.db'}"))
    assert schema_of(fresh) == schema_of(slow)


def test_alembic_finds_nothing_to_do_on_a_fresh_store(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    before = schema_of(engine)
    migrated(engine)
    assert schema_of(engine) == before


def test_a_store_at_an_older_revision_is_migrated(tmp_path: Path) -> None:
    engine = migrated(create_engine(f"sqlite:///{tmp_path / 'x.db'}"), to="0013")
    upgrade(engine)
    assert _revision(engine) == HEAD_REVISION
    slow = migrated(create_engine(f"sqlite:///{tmp_path / 'migrated.db'}"))
    assert schema_of(engine) == schema_of(slow)


def test_a_fresh_store_opens_without_loading_alembic(tmp_path: Path) -> None:
    code = (
        "import sys; from compute.store import Store; "
        f"Store.open('sqlite:///{tmp_path / 'x.db'}').close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
