"""The CLI's fast reads: answers the data directory's SQLite store gives through the
standard library's sqlite3, read-only, where this module can vouch that the full path
(settings, SQLAlchemy, the store; compute/client/local.py) would give the same.

Building the settings and importing SQLAlchemy and the tables cost most of a second before
the first row; a read that needs neither starts in a fifth of that. Each answer is None
whenever this module cannot vouch for it: a configuration file or a setting in the
environment beyond the data directory; a store that is not the data directory's SQLite
file, or not at the code's schema revision, or at one these reads were not checked
against; a store or data directory that is missing or not writable (the full path creates
the one and refuses the other); a name the store does not hold; anything sqlite3 refuses.
The full path then answers, or refuses in one line.

Rows become the same domain objects and the same views (compute/views.py) as on the full
path; tests/unit/test_cli_fast_reads.py compares the two on stored nodes of any content,
tests/e2e/test_cli_fast_reads.py the output of both, as processes, on a swept fleet.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compute.client.local import plain
from compute.client.protocol import View
from compute.config_defaults import (
    ENV_CONFIG,
    MAX_SETTING_TEXT,
    STORE_FILE,
    default_data_dir,
    setting_path,
    sqlite_url,
)
from compute.domain import NODE_FIELDS, Event, EventKind, Node
from compute.views import node_view
from health.inputs import InputError
from health.inputs import text as valid_text
from health.policy import DrainOwner, Lifecycle, NodeHealth

# Schema revisions whose nodes and pools tables these reads were checked against. A store is
# read only at the code's own newest revision (the full path migrates any other first), and
# only if that is one of these: tests/unit/test_cli_fast_reads.py fails on a new migration
# until it is added here, once these reads are checked against it.
READ_REVISIONS = frozenset({"0005", "0006", "0007", "0011", "0012", "0013", "0014"})
# The code's migrations, one file each, named by revision (NNNN_what.py).
_MIGRATIONS = Path(__file__).resolve().parents[1] / "store" / "migrations" / "versions"
# A reader waits this long on a writer's lock (WAL: only while one checkpoints or recovers)
# before the full path takes over, with its own, longer wait.
BUSY_TIMEOUT_SECONDS = 5.0
# What SQLAlchemy would read from the URL otherwise than as the file's path.
_URL_SPECIAL = frozenset("?#%")
# The nodes table's columns, as compute/store/models.py (NodeRow) declares them.
_NODE_COLUMNS = NODE_FIELDS


class CannotVouch(Exception):
    """The fast read cannot say what the full path would; the full path answers."""


def store_file(
    config_path: Path | None, overrides: Mapping[str, Any], environ: Mapping[str, str]
) -> Path | None:
    """The SQLite file the settings would open, when they are sure to hold nothing but
    defaults and the data directory (given as an override, e.g. --data-dir, or
    $COMPUTECTL_DATA_DIR); None when this cannot be said without building them."""
    if config_path is not None or environ.get(ENV_CONFIG):
        return None
    given: object = None
    for name, value in environ.items():
        path = setting_path(name)
        if path is None:
            continue
        # Any other setting, or the data directory named twice (the last one read wins).
        if path != ["data_dir"] or given is not None:
            return None
        given = value
    if any(key != "data_dir" for key in overrides):
        return None
    given = overrides.get("data_dir", given)
    try:
        data_dir = default_data_dir(environ) if given is None else _data_dir(given)
        # The full path makes a missing data directory and refuses one it cannot write.
        if not data_dir.is_dir() or not os.access(data_dir, os.W_OK | os.X_OK):
            return None
    except (InputError, OSError, RuntimeError):
        return None
    db = data_dir / STORE_FILE
    if _URL_SPECIAL & set(sqlite_url(data_dir)) or not db.is_file():
        return None
    return db


def _data_dir(value: object) -> Path:
    """The data directory as the settings validate it (compute/config_base.py, then
    Settings._expand); InputError where they would refuse it."""
    if not isinstance(value, str) or not value:
        raise InputError("not a data directory this module vouches for")
    valid_text(value, "text", max_len=MAX_SETTING_TEXT)
    return Path(value).expanduser()


def nodes(db: Path, pool: str | None, state: str | None) -> list[View] | None:
    """node_view of each node, as LocalClient.nodes gives it; None: ask the full path (an
    unknown pool or state among the reasons: it refuses them in its words)."""
    if state is not None and state not in {s.value for s in Lifecycle}:
        return None
    given = (("pool = ?", pool), ("state = ?", state))
    where = [(sql, arg) for sql, arg in given if arg is not None]
    query = f"SELECT {', '.join(_NODE_COLUMNS)} FROM nodes"
    if where:
        query += " WHERE " + " AND ".join(sql for sql, _ in where)
    try:
        with _snapshot(db) as conn:
            known = conn.execute("SELECT 1 FROM pools WHERE name = ?", (pool,)).fetchone()
            if pool is not None and known is None:
                return None
            rows = conn.execute(query + " ORDER BY name", [arg for _, arg in where]).fetchall()
            marks = _lemon_marks(conn)
        return [plain(node_view(n, marks.get(n.name))) for n in map(_node, rows)]
    except (CannotVouch, ValueError, TypeError, KeyError, AttributeError):
        # A row that does not convert: the full path says what it says of it.
        return None


def code_head() -> str | None:
    """The newest revision among the code's migrations (compute.store.engine.HEAD_REVISION,
    without loading SQLAlchemy); None if they cannot be listed."""
    try:
        names = [entry.name for entry in os.scandir(_MIGRATIONS)]
    except OSError:
        return None
    revisions = [n[:4] for n in names if n[:4].isdigit() and n[4:5] == "_" and n.endswith(".py")]
    return max(revisions, default=None)


@contextmanager
def _snapshot(db: Path) -> Iterator[sqlite3.Connection]:
    """One read-only snapshot of a store at the code's revision, one of READ_REVISIONS;
    CannotVouch otherwise."""
    try:
        conn = sqlite3.connect(
            db.absolute().as_uri() + "?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise CannotVouch(str(exc)) from None
    try:
        conn.execute("BEGIN")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        head = code_head()
        if head not in READ_REVISIONS or revision != [(head,)]:
            raise CannotVouch(f"schema revision {revision}, the code's {head}")
        yield conn
    except sqlite3.Error as exc:
        raise CannotVouch(str(exc)) from None
    finally:
        conn.close()


def _lemon_marks(conn: sqlite3.Connection) -> dict[str, Event]:
    """Each lemon's mark, as compute/services/lemons.py's ``marks`` reads it: the newest
    mark or clear of each node, kept where it is a mark."""
    query = "SELECT at, node, kind, reason, actor, pool, detail, id FROM events"
    query += " WHERE kind IN (?, ?) ORDER BY id"
    kinds = (EventKind.LEMON, EventKind.LEMON_CLEARED)
    newest = {
        node: Event(_utc(at), node, kind, reason, actor, pool, json.loads(detail), i)
        for at, node, kind, reason, actor, pool, detail, i in conn.execute(query, kinds)
    }
    return {node: e for node, e in newest.items() if e.kind == EventKind.LEMON}


def _node(r: tuple[Any, ...]) -> Node:
    """A row as compute/store/rows.py's node_from_row makes it, with what SQLAlchemy's
    column types do on SQLite (UtcDateTime, Boolean, JSON) done here. A value that does not
    convert raises as the full path would."""
    v = dict(zip(_NODE_COLUMNS, r, strict=True))
    return Node(
        name=v["name"],
        pool=v["pool"],
        rack=v["rack"],
        gpu_model=v["gpu_model"],
        gpu_count=v["gpu_count"],
        state=Lifecycle(v["state"]),
        state_since=_utc(v["state_since"]),
        drain_reason=v["drain_reason"],
        drain_owner=DrainOwner(v["drain_owner"]) if v["drain_owner"] else None,
        drain_actor=v["drain_actor"],
        automation_drain=bool(v["automation_drain"]),
        deferred_reason=v["deferred_reason"],
        jobs_running=v["jobs_running"],
        gpus_allocated=v["gpus_allocated"],
        backend_state=v["backend_state"],
        power_watts=v["power_watts"],
        last_seen=_utc_or_none(v["last_seen"]),
        last_checked_at=_utc_or_none(v["last_checked_at"]),
        health=NodeHealth.from_json(json.loads(v["health"])),
        version=v["version"],
        attention_at=_utc_or_none(v["attention_at"]),
        would=v["would"],
        switch=v["switch"],
    )


def _utc(stored: str) -> datetime:
    # SQLAlchemy stores naive UTC as ISO text and reads it back with fromisoformat.
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _utc_or_none(stored: str | None) -> datetime | None:
    return None if stored is None else _utc(stored)
