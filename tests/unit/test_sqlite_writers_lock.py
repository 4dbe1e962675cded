"""SQLite writers of several processes queue on a lock file beside the database instead of
polling SQLite's busy handler. Two engines on one file stand for two processes: an flock
excludes every other open file of the lock, in this process too."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from compute.store.engine import WRITES, open_engine


def test_a_writer_waits_for_another_engines_writer_and_starts_when_it_ends(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    a, b = open_engine(url), open_engine(url)
    try:
        with a.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        wa = a.execution_options(**{WRITES: True})
        wb = b.execution_options(**{WRITES: True})
        started = threading.Event()
        done: list[float] = []

        def second() -> None:
            started.set()
            with wb.begin() as conn:
                done.append(time.monotonic())
                conn.execute(text("INSERT INTO t VALUES (2)"))

        with wa.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            assert (tmp_path / "db.sqlite.writers").exists()
            other = threading.Thread(target=second)
            other.start()
            started.wait()
            time.sleep(0.2)
            assert not done  # waiting on the lock file, not in a transaction
            released = time.monotonic()
        other.join(10)
        assert done and done[0] - released < 0.1  # not SQLite's 100 ms sleeps
        with b.connect() as conn:
            assert conn.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
    finally:
        a.dispose()
        b.dispose()


def test_a_store_in_memory_has_no_lock_file(tmp_path: Path) -> None:
    engine = open_engine("sqlite://")
    try:
        with engine.execution_options(**{WRITES: True}).begin() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert not list(tmp_path.iterdir())


def test_a_writer_of_many_transactions_lets_a_waiting_one_in_between_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    a, b = open_engine(url), open_engine(url)
    try:
        with a.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        wa = a.execution_options(**{WRITES: True})
        wb = b.execution_options(**{WRITES: True})
        bulk_done = threading.Event()
        written: list[int] = []

        def bulk() -> None:  # a sweep's chunks, one transaction after another
            for i in range(40):
                with wa.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
                    time.sleep(0.01)
                written.append(i)
            bulk_done.set()

        writer = threading.Thread(target=bulk)
        writer.start()
        while len(written) < 3:
            time.sleep(0.001)
        with wb.begin() as conn:  # a report, arriving while the bulk writer writes
            conn.execute(text("INSERT INTO t VALUES (-1)"))
            behind = len(written)
        writer.join(10)
        assert bulk_done.is_set()
        assert behind <= 6, f"waited for {behind - 3} of the other writer's transactions"
    finally:
        a.dispose()
        b.dispose()
