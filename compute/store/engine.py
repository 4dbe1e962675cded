"""Engine set-up (SQLite in WAL mode, or PostgreSQL) and schema migrations at start-up."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from compute.errors import ConfigError


def open_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection per use: SQLite locks are per connection, and a pool
            # shared across the sweep thread and request threads only adds contention.
            engine = create_engine(
                url, poolclass=NullPool, connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except ArgumentError as exc:
        raise ConfigError(f"database_url is not a valid SQLAlchemy URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"database driver missing for {url.split(':', 1)[0]}: {exc.name} "
            "(install computectl[postgres] for PostgreSQL)"
        ) from None
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("compute.store").joinpath("migrations"))
    )
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    try:
        with engine.begin() as conn:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise ConfigError(f"cannot open the state store: {exc.orig}") from None


def has_schema(engine: Engine) -> bool:
    return "alembic_version" in inspect(engine).get_table_names()
