"""The work a drain ended, kept with its event (compute/services/drain_work.py): what the
backend reported reads back the same from the store's JSON, hostile stored values are
skipped and counted, never raised, and the look after a sweep finds the kept work of a
drain and its retries without the backend that drained (another replica's look)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compute.domain import Event, EventKind
from compute.services import job_impact
from compute.services.drain_work import (
    KEY,
    MAX_ENTRIES,
    MAX_ID,
    drain_detail,
    evicted_detail,
    stored_work,
)
from compute.store import Store
from compute.store import impact as kept
from scheduler.protocol import DrainReport
from scheduler.work import ENDED, FAILED, NODE_FAIL, RUNNING, NodeWork

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NODE = "gpu-001"

zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)
names = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), max_size=60)


@st.composite
def work(draw: st.DrawFn) -> NodeWork:
    start = draw(times)
    end = draw(st.none() | st.timedeltas(timedelta(0), timedelta(days=400)).map(start.__add__))
    return NodeWork(
        draw(names.filter(bool)),
        draw(names),
        NODE,
        draw(st.integers(1, 4096)),
        start,
        end,
        draw(st.sampled_from([RUNNING, NODE_FAIL, FAILED, ENDED])),
    )


def through_json(detail: dict[str, Any]) -> dict[str, Any]:
    """As the store keeps an event's detail."""
    out: dict[str, Any] = json.loads(json.dumps(detail))
    return out


@given(st.lists(work(), max_size=MAX_ENTRIES))
@settings(max_examples=200, deadline=None)
def test_what_a_drain_ended_reads_back_as_it_was(ended: list[NodeWork]) -> None:
    read = stored_work(through_json(evicted_detail(ended)), NODE)
    assert (read.work, read.skipped) == (ended, 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
# Entries shaped like the kept ones, each field any JSON value or a near miss.
fields = {
    "id": st.text(max_size=MAX_ID + 5) | json_values,
    "tenant": st.text(max_size=70) | json_values,
    "gpus": st.integers(-5, 5000) | json_values,
    "start": times.map(datetime.isoformat) | st.datetimes().map(datetime.isoformat) | json_values,
    "end": times.map(datetime.isoformat) | json_values,
    "state": st.sampled_from([RUNNING, ENDED, "Running", ""]) | json_values,
}
entries = st.fixed_dictionaries({}, optional=fields) | json_values


@given(st.lists(entries, max_size=MAX_ENTRIES + 10) | json_values)
@settings(max_examples=300, deadline=None)
def test_hostile_stored_work_is_skipped_and_counted(kept_value: Any) -> None:
    read = stored_work({KEY: kept_value}, NODE)
    n = len(kept_value) if isinstance(kept_value, list) else 1
    assert len(read.work) + read.skipped == (n if kept_value is not None else 0)
    for w in read.work:
        assert 0 < len(w.id) <= MAX_ID and w.id.isprintable() and w.tenant.isprintable()
        assert w.start.utcoffset() is not None and 0 < w.gpus <= 4096 and w.node == NODE
        assert w.end is None or w.end >= w.start
    # What reads back is written back the same.
    again = stored_work(through_json(evicted_detail(read.work)), NODE)
    assert again.work == read.work


def test_what_would_not_read_back_is_not_kept_and_the_count_is_bounded() -> None:
    good = NodeWork("tenant-a/p", "a", NODE, 4, T0, T0 + timedelta(hours=1), ENDED)
    bad = [
        NodeWork("tenant-a/" + "x" * MAX_ID, "a", NODE, 4, T0, None, RUNNING),  # never cut
        NodeWork("tenant-a/q\x00", "a", NODE, 4, T0, None, RUNNING),
        NodeWork("tenant-a/r", "a", NODE, 0, T0, None, RUNNING),
        NodeWork("tenant-a/s", "a", NODE, 4, datetime(2026, 12, 1), None, RUNNING),  # naive
        NodeWork("tenant-a/t", "a", NODE, 4, T0, T0 - timedelta(seconds=1), ENDED),
        NodeWork("tenant-a/u", "a", NODE, 4, T0, None, "weird"),
    ]
    assert stored_work(evicted_detail([*bad, good]), NODE).work == [good]
    assert evicted_detail(bad) == {} and drain_detail(DrainReport()) == {}
    many = [NodeWork(f"tenant-a/p{i}", "a", NODE, 1, T0, None, ENDED) for i in range(300)]
    assert len(evicted_detail(many)[KEY]) == MAX_ENTRIES
    read = stored_work({KEY: [evicted_detail(many[:1])[KEY][0]] * 300}, NODE)
    assert (len(read.work), read.skipped) == (MAX_ENTRIES, 300 - MAX_ENTRIES)
    assert drain_detail(DrainReport(("ns/p: budget",), (good,))) == {
        "left_running": ["ns/p: budget"],
        **evicted_detail([good]),
    }


# -- the look, from the events alone --------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.engine.dispose()


def drain_event(at: datetime, ended: list[NodeWork], **detail: Any) -> Event:
    return Event(
        at=at, node=NODE, kind=EventKind.DRAIN, reason="computectl: xid 79", pool="training",
        detail={**detail, **evicted_detail(ended)},
    )  # fmt: skip


def test_the_look_finds_what_a_drain_and_its_retries_ended_without_the_backend(
    store: Store,
) -> None:
    started = T0 - timedelta(hours=2)
    evicted = NodeWork("tenant-a/train", "a", NODE, 4, started, T0, ENDED)
    held = NodeWork("tenant-b/serve", "b", NODE, 8, started, T0 + timedelta(minutes=5), ENDED)
    late = NodeWork("tenant-c/new", "c", NODE, 2, T0 + timedelta(minutes=1), T0, ENDED)
    fault = drain_event(T0, [evicted], check="xid", cause="fatal")
    retry = drain_event(T0 + timedelta(minutes=5), [held, evicted], moved=["tenant-b/serve"])
    with store.transaction() as tx:
        tx.add_events([fault, retry])
        # A malformed entry kept with a retry is skipped; the rest still count.
        tx.add_events(
            [drain_event(T0 + timedelta(minutes=6), [], **{KEY: [{"id": 3}], "moved": []})]
        )
        tx.add_events([drain_event(T0 + timedelta(minutes=7), [late])])  # started after
    now = T0 + timedelta(minutes=10)
    # No backend: the replica that drained is gone, and its memory with it.
    look = job_impact.look_at_drains(store, {}, kept.Mark(0, now - timedelta(hours=1)), now)
    assert look.errors == []
    hits = {h.work: h for h in look.hits}
    assert sorted(hits) == ["tenant-a/train", "tenant-b/serve"]  # each once
    assert (hits["tenant-a/train"].gpus, hits["tenant-a/train"].tenant) == (4, "a")
    assert hits["tenant-b/serve"].gpu_hours == pytest.approx(8 * 2.0)  # to the fault drain
    assert {h.check for h in look.hits} == {"xid"}
