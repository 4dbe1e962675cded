"""GPU-hours per UTC day: records split at midnights exactly, the window, backends that
cannot be read, and the simulated cluster's running jobs."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.errors import InvalidInput, NotFoundError
from compute.services import usage
from compute.views import usage_view
from scheduler.errors import Unreachable
from scheduler.simulated import ClusterSpec, SimulatedCluster, SimulatedUsage
from scheduler.simulated.cluster import SimTenant
from scheduler.usage import UsageRead, UsageRecord, UsageSource

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 3, 12, tzinfo=UTC)


def rec(start: datetime, end: datetime, gpus: int = 8, pool: str = "training") -> UsageRecord:
    return UsageRecord("t", pool, "H100-SXM", start, end, gpus)


def test_a_record_across_midnight_splits_into_its_days() -> None:
    r = rec(datetime(2026, 3, 1, 22, tzinfo=UTC), datetime(2026, 3, 2, 3, tzinfo=UTC))
    rows = usage.summarise([("slurm", r)], SINCE, UNTIL)
    assert [(x.day, x.gpu_hours) for x in rows] == [
        (date(2026, 3, 1), 16.0),
        (date(2026, 3, 2), 24.0),
    ]


def test_days_are_utc_days_whatever_the_records_zone() -> None:
    plus5 = timezone(timedelta(hours=5))
    r = rec(datetime(2026, 3, 2, 3, tzinfo=plus5), datetime(2026, 3, 2, 7, tzinfo=plus5), 1)
    rows = usage.summarise([("slurm", r)], SINCE, UNTIL)
    assert [(x.day, x.gpu_hours) for x in rows] == [
        (date(2026, 3, 1), 2.0),
        (date(2026, 3, 2), 2.0),
    ]


def test_the_window_clips_and_rows_are_per_pool_model_and_source() -> None:
    long = rec(datetime(2026, 2, 20, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC), 1)
    other = rec(SINCE, SINCE + timedelta(hours=1), 2, pool="inference")
    rows = usage.summarise([("slurm", long), ("kubernetes", other)], SINCE, UNTIL)
    assert [(r.day.day, r.pool, r.gpu_hours, r.source) for r in rows] == [
        (1, "inference", 2.0, "kubernetes"),
        (1, "training", 24.0, "slurm"),
        (2, "training", 24.0, "slurm"),
        (3, "training", 12.0, "slurm"),
    ]


AWARE = st.datetimes(
    min_value=datetime(2026, 2, 25), max_value=datetime(2026, 3, 6), timezones=st.just(UTC)
)


@given(st.lists(st.tuples(AWARE, AWARE, st.integers(1, 1024)), max_size=6))
def test_the_days_add_up_to_the_clipped_records_exactly(
    spans: list[tuple[datetime, datetime, int]],
) -> None:
    records = [rec(min(a, b), max(a, b), g) for a, b, g in spans]
    total = sum(g for r in records for _, g in usage.split_days(r, SINCE, UNTIL))
    expected = sum(
        r.gpus * usage._micros(max(timedelta(0), min(r.end, UNTIL) - max(r.start, SINCE)))
        for r in records
    )
    assert total == expected
    for r in records:
        for day, _ in usage.split_days(r, SINCE, UNTIL):
            assert SINCE.date() <= day <= UNTIL.date()


def test_the_window_is_whole_utc_days_to_now() -> None:
    now = datetime(2026, 3, 3, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert usage.window(now, 2) == (datetime(2026, 3, 1, tzinfo=UTC), now)
    for bad in (0, -1, usage.MAX_DAYS + 1):
        with pytest.raises(InvalidInput):
            usage.window(now, bad)


class Source:
    def __init__(self, kind: str, read: UsageRead | Exception) -> None:
        self.kind = kind
        self.read = read

    def usage(self, since: datetime, until: datetime, tenant: str | None = None) -> UsageRead:
        if isinstance(self.read, Exception):
            raise self.read
        return self.read


def test_a_backend_that_cannot_be_read_is_a_note_and_the_others_still_count() -> None:
    day = rec(SINCE, SINCE + timedelta(hours=2), 1)
    foreign = UsageRecord("someone-else", "training", "H100-SXM", SINCE, UNTIL, 8)
    elsewhere = rec(SINCE, UNTIL, 8, pool="not-this-sources")
    good = Source("kubernetes", UsageRead([day, foreign, elsewhere], skipped=2))
    down = Source("slurm", Unreachable("slurmdbd is not answering"))
    assert isinstance(good, UsageSource)
    now = SimpleNamespace(now=lambda: UNTIL)
    backends = SimpleNamespace(usage_groups=lambda: [(good, {"training"}), (down, {"gpu"})])
    store = SimpleNamespace(tenant=lambda name: object() if name == "t" else None)
    rt: Any = SimpleNamespace(store=store, clock=now, backends=backends)
    got = usage.tenant_usage(rt, "t", days=3)
    assert [(r.day, r.gpu_hours, r.source) for r in got.rows] == [(SINCE.date(), 2.0, "kubernetes")]
    assert got.notes == [
        "kubernetes: 2 record(s) could not be read and are left out",
        usage._CAVEATS["kubernetes"],
        "slurm: usage cannot be read now: slurmdbd is not answering",
    ]
    view = usage_view(got)
    assert view["rows"] == [
        {"day": "2026-03-01", "pool": "training", "gpu_model": "H100-SXM", "gpu_hours": 2.0,
         "source": "kubernetes"}
    ]  # fmt: skip
    assert view["since"] == "2026-03-01T00:00:00+00:00" and view["days"] == 3
    with pytest.raises(NotFoundError):
        usage.tenant_usage(rt, "nobody")
    rt.backends = SimpleNamespace(usage_groups=lambda: [])
    assert usage.tenant_usage(rt, "t").notes == ["no pool reports GPU usage"]


def test_the_simulation_counts_its_running_jobs_per_model() -> None:
    spec = ClusterSpec(
        {"n1": ("training", "H100-SXM", 8), "n2": ("training", "", 8)}, {"training": "training"}
    )
    cluster = SimulatedCluster(spec, seed=1, now=SINCE.timestamp(), warm=False)
    cluster.set_tenant(SimTenant("t", [], {"training": 16}))
    job = cluster.submit("t", "training", 8, nodes=2, hours=2)
    assert job.start is not None
    cluster.submit("u", "training", 4, nodes=1, hours=1)  # no quota: it waits
    source = SimulatedUsage(lambda: nullcontext(cluster))
    two = SINCE + timedelta(hours=2)
    assert source.usage(SINCE, UNTIL, "t").records == [
        UsageRecord("t", "training", "H100-SXM", SINCE, two, 8),
        UsageRecord("t", "training", "unknown", SINCE, two, 8),
    ]
    # Still running at `until`: it ends there.
    assert source.usage(SINCE, SINCE + timedelta(hours=1), "t").records[0].end == SINCE + timedelta(
        hours=1
    )
    assert source.usage(SINCE, UNTIL, "u").records == []
