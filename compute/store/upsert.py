"""An INSERT that can say what to do on a conflicting key (``ON CONFLICT``), in the
store's own dialect: SQLite's or PostgreSQL's, imported when first needed (loading
PostgreSQL's dialect cost every command's start 25 ms on SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


def upsert(conn: Connection, table: Any) -> Any:
    """``insert(table)`` of ``conn``'s dialect, with ``on_conflict_do_nothing`` and
    ``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
