"""Tenants' drift recorded on a real PostgreSQL by replicas at once (a lease handed over
part-way through a check): four threads, each its own Store, record the same drift, then
the same fix; each object starts and stops drifting with one event."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from compute.domain import Event
from compute.store import Store
from compute.store import drift as kept
from compute.store.drift import Drift

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 2, 8, tzinfo=UTC)
FOUND = [Drift(f"t{i}", "slurm", f"qos t{i}-training", "update", "live", "spec") for i in range(20)]
TENANTS = {d.tenant for d in FOUND}


def announce(d: Drift, started: bool) -> Event:
    kind = "tenant_drift" if started else "tenant_drift_cleared"
    return Event(at=T0, node="", kind=kind, detail={"tenant": d.tenant, "object": d.object})


def at_once(stores: list[Store], step: Callable[[Store], None]) -> None:
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def replica(store: Store) -> None:
        try:
            start.wait()
            step(store)
        except BaseException as exc:  # reported below: a thread's failure is the test's
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_replicas_recording_at_once_record_each_start_and_stop_once(clean_postgres: str) -> None:
    stores = [Store.open(clean_postgres) for _ in range(4)]
    try:
        at_once(stores, lambda s: kept.record(s, "slurm", FOUND, TENANTS, TENANTS, T0, announce))
        assert len(kept.drifts(stores[0])) == len(FOUND)
        assert len(stores[1].events(kinds=["tenant_drift"], limit=1000)) == len(FOUND)
        later = T0 + timedelta(minutes=5)
        at_once(stores, lambda s: kept.record(s, "slurm", [], TENANTS, TENANTS, later, announce))
        assert kept.drifts(stores[2]) == []
        assert len(stores[3].events(kinds=["tenant_drift_cleared"], limit=1000)) == len(FOUND)
        (check,) = kept.checks(stores[0])
        assert check.checked_at == later and not check.error
    finally:
        for s in stores:
            s.close()
