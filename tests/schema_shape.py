"""A database's schema as the database describes it, and a store built the slow way (every
migration in turn), for tests that hold a fresh store to what the migrations build."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect, text

from compute.store.engine import _migrate


def migrated(engine: Engine, to: str = "heads") -> Engine:
    """``engine``'s database brought to ``to`` by Alembic, one migration after another."""
    with engine.begin() as conn:
        _migrate(engine, conn, to)
    return engine


def schema_of(engine: Engine) -> dict[str, Any]:
    """Every table's columns (type, nullability, server default), keys, indexes and unique
    constraints, and the stamped revision."""
    found = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in found.get_columns(table)
            ],
            "pk": found.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in found.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    with engine.connect() as conn:
        out["revision"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return out
