"""Where the simulated world lives between processes: a SQLite file of rows, and a lock.

Every row carries the generation that last wrote it; the file's generation goes up
by one per operation that changed something. A process that saw generation G reads
only the rows written after G (a job that ended leaves a row saying so); every
few hundred generations those markers are dropped, and a process that had not
looked since reads everything again. The lock (``flock`` on a file beside it) is
what makes one operation atomic across processes; SQLite's own locking only
keeps the file whole.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from compute.simulation.codec import Row

COMPACT_EVERY = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0), gen INTEGER NOT NULL, floor INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta VALUES (0, 0, 0);
CREATE TABLE IF NOT EXISTS rows (
    kind TEXT NOT NULL, key TEXT NOT NULL, gen INTEGER NOT NULL, data,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS rows_gen ON rows (gen);
"""


class WorldFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        with self.locked():
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        # The world is a simulation: losing the last operations to a power cut is harmless.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self._db.close()
        os.close(self._lock_fd)

    def lock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def locked(self) -> _Held:
        return _Held(self)

    def generation(self) -> tuple[int, int]:
        """(generation, floor): a reader that saw less than the floor must read everything."""
        gen, floor = self._db.execute("SELECT gen, floor FROM meta").fetchone()
        return int(gen), int(floor)

    def rows_since(self, gen: int) -> list[Row]:
        return list(self._db.execute("SELECT kind, key, data FROM rows WHERE gen > ?", (gen,)))

    def all_rows(self) -> list[Row]:
        return list(self._db.execute("SELECT kind, key, data FROM rows WHERE data IS NOT NULL"))

    def write(self, rows: list[Row], gen: int) -> None:
        """Store ``rows`` as generation ``gen`` in one transaction (the lock is held)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO rows (kind, key, gen, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET gen = excluded.gen, data = excluded.data",
                [(kind, key, gen, data) for kind, key, data in rows],
            )
            if gen % COMPACT_EVERY == 0:
                db.execute("DELETE FROM rows WHERE data IS NULL")
                db.execute("UPDATE meta SET gen = ?, floor = ?", (gen, gen))
            else:
                db.execute("UPDATE meta SET gen = ?", (gen,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class _Held:
    def __init__(self, file: WorldFile) -> None:
        self._file = file

    def __enter__(self) -> None:
        self._file.lock()

    def __exit__(self, *exc: object) -> None:
        self._file.unlock()
