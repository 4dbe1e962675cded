"""Pods' GPU time counted on a real PostgreSQL by replicas at once: four threads, each its
own Store (its own connections), count the same pods at the same moments over and over;
every interval is counted once, to the microsecond."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from compute.domain import Event
from compute.store import Store
from compute.store import usage as kept
from scheduler.kubernetes.usage import PodSpan

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
PODS = 40


def spans(now: datetime) -> list[PodSpan]:
    return [
        PodSpan(f"uid-{i}", f"t{i % 3}", "training", "H100-SXM", 1 + i % 8, T0, now, False)
        for i in range(PODS)
    ]


def test_replicas_counting_at_once_count_each_interval_once(clean_postgres: str) -> None:
    stores = [Store.open(clean_postgres) for _ in range(4)]
    moments = [T0 + timedelta(minutes=m) for m in (1, 2, 2, 3, 5, 5, 8, 13, 21, 34, 55, 89)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def replica(store: Store) -> None:
        try:
            start.wait()
            for now in moments:
                kept.record(store, spans(now), now)
        except BaseException as exc:  # reported below: a thread's failure is the test's
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        last = moments[-1]
        seconds = int((last - T0).total_seconds())
        want = {f"t{k}": 0 for k in range(3)}
        for i in range(PODS):
            want[f"t{i % 3}"] += (1 + i % 8) * seconds * 1_000_000
        got = {t: b.gpu_us for t, b in kept.budgets(stores[0]).items()}
        assert got == want
        # Split at midnight: the 1st has the first hour, the 2nd the rest.
        for tenant, total in want.items():
            days = kept.days(stores[1], tenant, T0.date(), last.date())
            assert sum(d.gpu_us for d in days) == total
            assert [d.day.day for d in days] == [1, 2]
    finally:
        for s in stores:
            s.close()


def test_a_threshold_crossed_by_replicas_at_once_is_recorded_once(clean_postgres: str) -> None:
    stores = [Store.open(clean_postgres) for _ in range(4)]
    try:
        kept.track(stores[0], "t", T0)
        start = threading.Barrier(len(stores))
        won: list[bool] = []

        def replica(store: Store) -> None:
            start.wait()
            event = Event(at=T0, node="", kind="tenant_budget_80", detail={"tenant": "t"})
            won.append(kept.move_level(store, "t", 0, 80, T0, [event]))

        threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(won) == [False, False, False, True]
        assert len(stores[0].events(kinds=["tenant_budget_80"])) == 1
        assert kept.budgets(stores[0])["t"].level == 80
    finally:
        for s in stores:
            s.close()
