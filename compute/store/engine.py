"""Engine set-up (SQLite in WAL mode, or PostgreSQL) and schema migrations at start-up."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import weakref
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError, to_json
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from compute.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration (tests/unit/test_store_head.py checks it against Alembic's head): a
# store already there opens without loading Alembic, a third of a CLI command's start.
HEAD_REVISION = "0014"
# PostgreSQL's advisory lock key for schema changes (replicas starting together).
SCHEMA_LOCK_KEY = 0x636F6D7075746501


def open_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Connections kept, one checked out per transaction (never two threads on one):
            # opening one per transaction cost its PRAGMAs each time, and closing the last
            # one checkpointed the WAL, most of an action's time on a sweep. Overflow has no
            # ceiling (a burst of request threads never waits on the pool; those beyond the
            # kept ones are closed when returned).
            engine = create_engine(
                url,
                json_serializer=json_text,
                poolclass=QueuePool,
                pool_size=8,
                max_overflow=-1,
                connect_args={
                    "timeout": LOCK_TIMEOUT_SECONDS,
                    "check_same_thread": False,
                    "factory": _queued_writes(path if path and path != ":memory:" else None),
                },
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True, json_serializer=json_text)
    except ArgumentError as exc:
        raise ConfigError(f"database_url is not a valid SQLAlchemy URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"database driver missing for {url.split(':', 1)[0]}: {exc.name} "
            "(install computectl[postgres] for PostgreSQL)"
        ) from None
    return engine


def json_text(value: Any) -> str:
    """A JSON column's text: pydantic-core's encoder, a fifth of json.dumps's time (a first
    sweep of 10,240 nodes writes 146,000 such values: 0.43 -> 0.09 s); json.dumps where it
    refuses (a lone surrogate, which json.dumps escapes), so what was stored still is."""
    try:
        return to_json(value, inf_nan_mode="constants").decode()
    except (PydanticSerializationError, UnicodeError):
        return json.dumps(value)


# The execution option that marks a connection's transactions as writes (Store.transaction).
WRITES = "computectl_writes"
# How long a SQLite writer waits for the write lock before it fails ("database is locked").
LOCK_TIMEOUT_SECONDS = 30.0
# The longest a writer sleeps between looks at another process's writers' lock file.
WRITERS_STEP = 0.002


class QueuedWrites(sqlite3.Connection):
    """A SQLite connection whose write transactions queue, in this process, on one lock per
    engine (``writers``) before they take SQLite's: SQLite's busy handler only polls (sleeping
    up to 100 ms between tries), so writers of one process waiting on each other waited far
    longer than the writes took (API p99 2.1 s -> 1.2 s at 100 requests/s in
    benchmarks/api_load_bench.py).

    Across processes (`serve --workers`, replicas, the CLI beside `serve`) the writer that
    holds the in-process lock then takes an flock on a file beside the database
    (``<db>.writers``), waiting for it in steps of at most WRITERS_STEP instead of the busy
    handler's 100 ms: with API workers posting reports beside the acting process's sweeps,
    the busy handler's sleeps were most of a report's latency. SQLite's own lock still
    decides; the flock only keeps our writers from polling it. A writer that finds another
    process's writer waiting lets it go first (``<db>.writers.waiting``), so a run of
    transactions (a sweep's chunks) does not keep the lock from the API's reports."""

    writers: threading.Lock
    lock_path: str | None = None
    lock_fd: int | None = None  # one per engine: flock excludes other open files, ours too
    # Beside it (``<lock>.waiting``): shared-locked by each engine whose writer is waiting.
    waiting_fd: int | None = None
    holding = False
    flocked = False

    def begin_write(self) -> None:
        if not self.writers.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked (by this process's writers)")
        self.holding = True
        try:
            self._flock()
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def _flock(self) -> None:
        fd = self._lock_file()
        if fd is None:
            return
        waiting = type(self).waiting_fd
        if waiting is not None and _held_by_others(waiting):
            # Another process's writer is waiting for the lock: its turn before this one's
            # next. A sweep's writes come one after another, and the writer that had just let
            # go took the lock again before a waiter's next look: at 10,240 nodes an API
            # report waited for every chunk of the sweep's store (up to 0.5 s).
            time.sleep(2 * WRITERS_STEP)
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        step = 0.0002
        marked = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise sqlite3.OperationalError(
                            "database is locked (by another process's writers)"
                        ) from None
                    if waiting is not None and not marked:
                        fcntl.flock(waiting, fcntl.LOCK_SH)  # said: this process waits
                        marked = True
                    time.sleep(step)
                    step = min(step * 2, WRITERS_STEP)
                    continue
                self.flocked = True
                return
        finally:
            if marked and waiting is not None:
                fcntl.flock(waiting, fcntl.LOCK_UN)

    def _lock_file(self) -> int | None:
        # Opened on the first write, under the engine's lock (held by the caller).
        cls = type(self)
        if cls.lock_fd is None and cls.lock_path is not None:
            try:
                fd = os.open(cls.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                waiting = os.open(
                    f"{cls.lock_path}.waiting", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
            except OSError:
                cls.lock_path = None  # a read-only directory: SQLite's lock alone
            else:
                cls.lock_fd, cls.waiting_fd = fd, waiting
                # Closed with the engine's connection class (tests open many stores).
                weakref.finalize(cls, os.close, fd)
                weakref.finalize(cls, os.close, waiting)
        return cls.lock_fd

    def _release(self) -> None:
        if self.flocked:
            self.flocked = False
            fd = type(self).lock_fd
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if self.holding:
            self.holding = False
            self.writers.release()

    # The transaction ends here however it ends (a connection closed mid-transaction too).
    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def _held_by_others(fd: int) -> bool:
    """Whether another open file holds a lock on ``fd``'s file (this one holds none)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _queued_writes(db_path: str | None) -> type[QueuedWrites]:
    """The connection class of one engine: its connections share its lock and its lock
    file (beside the database ``db_path``; none in memory), no other's."""
    lock_path = f"{db_path}.writers" if db_path else None
    return type(
        "QueuedWrites", (QueuedWrites,), {"writers": threading.Lock(), "lock_path": lock_path}
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy begins each transaction itself (_sqlite_begin), not the driver.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """A write transaction takes SQLite's write lock when it begins: what it reads is then
    what it overwrites (a deferred one that read first fails at its first write if another
    wrote meanwhile). Reads stay deferred and never wait for writers (WAL)."""
    if not conn.get_execution_options().get(WRITES, False):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi_conn = conn.connection.dbapi_connection
    if isinstance(dbapi_conn, QueuedWrites):
        dbapi_conn.begin_write()
    else:  # a connection made elsewhere (a test's creator): SQLite's lock alone
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("compute.store").joinpath("migrations"))
    )
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). One process at a time: the
    store's write lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL), with
    the revision read again under it, so replicas starting together change it once."""
    if _revision(engine) == HEAD_REVISION:
        return
    try:
        with engine.execution_options(**{WRITES: True}).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            tables = set(inspect(conn).get_table_names())
            if "alembic_version" in tables:
                found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if found == HEAD_REVISION:
                    return
            elif not tables:
                _create_newest(conn)
                return
            _migrate(engine, conn)
    except OperationalError as exc:
        raise ConfigError(f"cannot open the state store: {exc.orig}") from None


def _create_newest(conn: Connection) -> None:
    """An empty database: the models' tables at once, stamped with the newest revision, as
    Alembic's own stamp would (tests/unit/test_store_head.py holds the result to what the
    migrations build). Running fourteen migrations, and importing Alembic, cost a fresh
    store three times as much."""
    from compute.store.schema import metadata

    metadata().create_all(conn, checkfirst=False)
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD_REVISION))


def _migrate(engine: Engine, conn: Connection, to: str = "heads") -> None:
    """Alembic's migrations on ``conn`` up to ``to`` (tests stop at older revisions)."""
    from alembic import command

    cfg = alembic_config(engine)
    cfg.attributes["connection"] = conn
    # "heads": features add their migrations on branches from one revision, which a merge
    # revision joins; until then every branch is applied.
    command.upgrade(cfg, to)


def _revision(engine: Engine) -> str | None:
    """The store's schema revision; None when it has none yet or cannot be read (the
    upgrade that follows says why)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def has_schema(engine: Engine) -> bool:
    return "alembic_version" in inspect(engine).get_table_names()
