"""`nodes list` read with sqlite3 alone gives what the store, through SQLAlchemy, gives; where
the fast read cannot vouch for that, it answers None and the full path answers.

tests/e2e/test_cli_fast_reads.py compares the two paths' output, as processes, on a swept
simulated fleet."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from compute.cli.main import cli
from compute.client import sqlite_reads
from compute.client.local import LocalClient
from compute.client.protocol import View
from compute.config_defaults import STORE_FILE, sqlite_url
from compute.domain import Event, EventKind, Node, Pool
from compute.store import Store
from compute.store.engine import HEAD_REVISION
from compute.store.models import NodeRow
from compute.store.rows import table_of
from health.policy import DrainOwner, Finding, Lifecycle, NodeHealth

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
POOLS = ("training", "inference")


def node(name: str, **changes: object) -> Node:
    n = Node(
        name=name,
        pool="training",
        rack="r01",
        gpu_model="H100-SXM",
        gpu_count=8,
        state=Lifecycle.IN_SERVICE,
        state_since=T0,
    )
    return n.evolve(**changes)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose store holds two pools and three nodes."""
    store = Store.open(sqlite_url(tmp_path))
    with store.transaction() as tx:
        tx.put_topology([], [], [], [Pool(p, "simulated", "H100-SXM") for p in POOLS])
        tx.add_nodes(
            [
                node("gpu-001"),
                node("gpu-002", pool="inference", jobs_running=2, gpus_allocated=8),
                node(
                    "gpu-003",
                    state=Lifecycle.DRAINED,
                    drain_reason="computectl: xid 79",
                    drain_owner=DrainOwner.COMPUTECTL,
                    last_seen=T0 + timedelta(microseconds=5),
                    health=NodeHealth(finding=Finding("xid", "XID 79 on GPU 3", True, T0)),
                ),
            ]
        )
        # gpu-003 failed again after repairs: marked twice, the newer mark shown.
        tx.add_events(
            [
                Event(
                    T0 - timedelta(days=40 - d),
                    "gpu-003",
                    EventKind.LEMON,
                    f"mark {d}",
                    detail={"action": "rma", "failures": [f"{T0.isoformat()} xid"]},
                )
                for d in (0, 1)
            ]
        )
    store.close()
    return tmp_path


def full(data_dir: Path, pool: str | None = None, state: str | None = None) -> list[View]:
    client = LocalClient(None, {"data_dir": str(data_dir)}, "operator:test")
    try:
        return client.nodes(pool, state)
    finally:
        client.close()


def fast(data_dir: Path, pool: str | None = None, state: str | None = None) -> list[View] | None:
    db = sqlite_reads.store_file(None, {"data_dir": str(data_dir)}, {})
    return None if db is None else sqlite_reads.nodes(db, pool, state)


def test_the_fast_read_reads_the_schema_the_store_writes() -> None:
    """A new migration fails this until the fast read is checked against it and its
    revision added to READ_REVISIONS (a store at it takes the full path meanwhile)."""
    assert sqlite_reads.code_head() == HEAD_REVISION
    assert HEAD_REVISION in sqlite_reads.READ_REVISIONS
    assert tuple(c.name for c in table_of(NodeRow).columns) == sqlite_reads._NODE_COLUMNS


@pytest.mark.parametrize(
    ("pool", "state"),
    [(None, None), ("training", None), (None, "drained"), ("inference", "in_service")],
)
def test_the_fast_read_is_the_full_one(data_dir: Path, pool: str | None, state: str | None) -> None:
    got = fast(data_dir, pool, state)
    assert got is not None and got == full(data_dir, pool, state)
    lemons = {n["name"]: n["lemon"] for n in got}
    if "gpu-003" in lemons:
        assert lemons["gpu-003"]["reason"] == "mark 1" and lemons.get("gpu-001") is None


NAMES = st.from_regex(r"gpu-[a-z0-9]{1,6}", fullmatch=True)
TEXT = st.text(max_size=40)
WHEN = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def nodes(draw: st.DrawFn) -> list[Node]:
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    finding = st.builds(Finding, check=TEXT, evidence=TEXT, fatal=st.booleans(), at=WHEN)
    return [
        node(
            name,
            pool=draw(st.sampled_from(POOLS)),
            rack=draw(TEXT),
            gpu_model=draw(TEXT),
            gpu_count=draw(st.integers(0, 64)),
            state=draw(st.sampled_from(Lifecycle)),
            state_since=draw(WHEN),
            drain_reason=draw(TEXT),
            drain_owner=draw(st.one_of(st.none(), st.sampled_from(DrainOwner))),
            drain_actor=draw(TEXT),
            automation_drain=draw(st.booleans()),
            deferred_reason=draw(TEXT),
            jobs_running=draw(st.integers(0, 2**31)),
            gpus_allocated=draw(st.integers(0, 64)),
            backend_state=draw(TEXT),
            power_watts=draw(st.floats(0, 1e6)),
            last_seen=draw(st.one_of(st.none(), WHEN)),
            last_checked_at=draw(st.one_of(st.none(), WHEN)),
            health=NodeHealth(
                finding=draw(st.one_of(st.none(), finding)),
                burn_in_failures=draw(st.integers(0, 9)),
            ),
            attention_at=draw(st.one_of(st.none(), WHEN)),
            would=draw(TEXT),
            switch=draw(TEXT),
        )
        for name in names
    ]


@pytest.fixture(scope="module")
def one_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Store]]:
    data_dir = tmp_path_factory.mktemp("store")
    store = Store.open(sqlite_url(data_dir))
    with store.transaction() as tx:
        tx.put_topology([], [], [], [Pool(p, "simulated", "H100-SXM") for p in POOLS])
    yield data_dir, store
    store.close()


@settings(max_examples=60, deadline=None)
@given(stored=nodes(), pool=st.sampled_from([None, *POOLS]))
def test_any_stored_node_reads_the_same(
    one_store: tuple[Path, Store], stored: list[Node], pool: str | None
) -> None:
    data_dir, store = one_store
    _sql(data_dir, "DELETE FROM nodes")
    with store.transaction() as tx:
        tx.add_nodes(stored)
    assert fast(data_dir, pool) == full(data_dir, pool)


# -- where the fast read cannot vouch, the full path answers --------------------------------


def test_a_configuration_file_or_another_setting_takes_the_full_path(
    data_dir: Path, tmp_path: Path
) -> None:
    over = {"data_dir": str(data_dir)}
    assert sqlite_reads.store_file(None, over, {}) == data_dir / STORE_FILE
    assert sqlite_reads.store_file(tmp_path / "c.toml", over, {}) is None
    assert sqlite_reads.store_file(None, over, {"COMPUTECTL_CONFIG": "c.toml"}) is None
    assert sqlite_reads.store_file(None, over, {"COMPUTECTL_SWEEP__INTERVAL_SECONDS": "1"}) is None
    assert sqlite_reads.store_file(None, over, {"COMPUTECTL_DATABASE_URL": "sqlite://"}) is None
    assert sqlite_reads.store_file(None, {**over, "sweep": {}}, {}) is None
    # Not settings: the client's and the tooling's variables.
    quiet = {"COMPUTECTL_TOKEN": "t", "COMPUTECTL_TEST_K8S_DIR": "/x", "PATH": "/bin"}
    assert sqlite_reads.store_file(None, over, quiet) == data_dir / STORE_FILE


def test_the_data_directory_is_found_as_the_settings_find_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"COMPUTECTL_DATA_DIR": str(data_dir)}
    assert sqlite_reads.store_file(None, {}, env) == data_dir / STORE_FILE
    # --data-dir wins over the environment, as it does in the settings.
    assert sqlite_reads.store_file(None, {"data_dir": "/nonexistent"}, env) is None
    assert sqlite_reads.store_file(None, {}, {"XDG_DATA_HOME": str(data_dir.parent)}) is None
    (data_dir / "computectl").mkdir()
    (data_dir / STORE_FILE).rename(data_dir / "computectl" / STORE_FILE)
    xdg = {"XDG_DATA_HOME": str(data_dir)}
    assert sqlite_reads.store_file(None, {}, xdg) == data_dir / "computectl" / STORE_FILE
    # Named twice (which one the settings take depends on the environment's order).
    twice = {**env, "COMPUTECTL_data_dir": str(data_dir)}
    assert sqlite_reads.store_file(None, {}, twice) is None


@pytest.mark.parametrize("name", ["bad\x07bell", "with?query", "with%25", "with#hash"])
def test_a_data_directory_the_settings_refuse_or_read_otherwise_takes_the_full_path(
    tmp_path: Path, name: str
) -> None:
    made = tmp_path / name
    made.mkdir()
    (made / STORE_FILE).touch()
    assert sqlite_reads.store_file(None, {"data_dir": str(made)}, {}) is None
    assert sqlite_reads.store_file(None, {}, {"COMPUTECTL_DATA_DIR": str(made)}) is None


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(), st.text(st.characters(codec="ascii"))), twice=st.booleans())
def test_any_data_directory_text_is_vouched_for_or_left_to_the_full_path(
    text: str, twice: bool
) -> None:
    env = {"COMPUTECTL_DATA_DIR": text, **({"COMPUTECTL_Data_Dir": text} if twice else {})}
    for found in (
        sqlite_reads.store_file(None, {"data_dir": text}, {}),
        sqlite_reads.store_file(None, {}, env),
    ):
        assert found is None or (found.is_file() and not set("?#%") & set(str(found)))
    long = "x" * 5000
    assert sqlite_reads.store_file(None, {"data_dir": long}, {}) is None


def test_a_missing_or_unwritable_store_takes_the_full_path(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sqlite_reads.store_file(None, {"data_dir": str(tmp_path / "none")}, {}) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sqlite_reads.store_file(None, {"data_dir": str(empty)}, {}) is None
    # (as root every directory is writable: the check is the one usable_data_dir makes)
    monkeypatch.setattr(os, "access", lambda *_: False)
    assert sqlite_reads.store_file(None, {"data_dir": str(data_dir)}, {}) is None


def _sql(data_dir: Path, statement: str) -> None:
    conn = sqlite3.connect(data_dir / STORE_FILE)
    with conn:
        conn.execute(statement)
    conn.close()


def test_another_schema_revision_takes_the_full_path(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fast(data_dir) is not None
    # The code's newer than the store (the full path migrates it first) ...
    _sql(data_dir, "UPDATE alembic_version SET version_num = '0004'")
    assert fast(data_dir) is None
    # ... or older, or at a revision these reads were not checked against.
    _sql(data_dir, f"UPDATE alembic_version SET version_num = '{HEAD_REVISION}'")
    monkeypatch.setattr(sqlite_reads, "code_head", lambda: "0004")
    assert fast(data_dir) is None
    monkeypatch.setattr(sqlite_reads, "READ_REVISIONS", frozenset())
    monkeypatch.setattr(sqlite_reads, "code_head", lambda: HEAD_REVISION)
    assert fast(data_dir) is None


def test_a_file_that_is_no_store_takes_the_full_path(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_bytes(b"not a database" * 100)
    assert fast(tmp_path) is None
    (tmp_path / STORE_FILE).write_bytes(b"")
    assert fast(tmp_path) is None


def test_an_unknown_pool_or_state_or_an_unreadable_row_takes_the_full_path(
    data_dir: Path,
) -> None:
    assert fast(data_dir, pool="nowhere") is None
    assert fast(data_dir, state="sideways") is None
    _sql(data_dir, "UPDATE nodes SET state_since = 'yesterday' WHERE name = 'gpu-002'")
    assert fast(data_dir) is None


def test_a_server_or_a_context_takes_the_full_path(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the fast read was asked")

    monkeypatch.setattr(sqlite_reads, "store_file", refuse)
    r = CliRunner().invoke(cli, ["--server", "http://127.0.0.1:9", "nodes", "list"])
    assert not isinstance(r.exception, AssertionError), r.output
    client_config = data_dir / "client.toml"
    client_config.write_text(
        'current_context = "prod"\n[contexts.prod]\nserver = "http://127.0.0.1:9"\n'
    )
    monkeypatch.setenv("COMPUTECTL_CLIENT_CONFIG", str(client_config))
    r = CliRunner().invoke(cli, ["nodes", "list"])
    assert not isinstance(r.exception, AssertionError), r.output
    monkeypatch.undo()
    # And on the data directory, it is asked.
    r = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "nodes", "list"])
    assert r.exit_code == 0 and "gpu-003" in r.output
