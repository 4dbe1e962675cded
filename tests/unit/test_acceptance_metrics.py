"""/metrics' tranche acceptance figures (compute/metrics/acceptance.py) from a store with a
tranche in each state: state, nodes by verdict, the share accepted against the threshold, and
which tranches keep series."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.metrics.acceptance import KEEP_CLOSED
from compute.services.acceptance_report import build_report
from compute.store import Store
from compute.store import acceptance as kept
from compute.store.acceptance import Tranche
from tests.unit.test_metrics import Scrape

AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def burn(**outcomes: str) -> dict[str, Any]:
    return {
        "nodes": {
            n: {"burn_in": o, "since": AT.isoformat(), "note": ""} for n, o in outcomes.items()
        }
    }


def fabric(tested: list[str], suspects: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"pool": "p", "nodes": tested, "run": True, "suspect_nodes": suspects, "suspect_links": []}
    ]


def tranche(
    store: Store, name: str, nodes: int, state: str, threshold: float = 0.75, **moved: Any
) -> Tranche:
    t = Tranche(
        name, tuple(f"{name}-{i}" for i in range(nodes)), threshold, "created", "", AT, "op"
    )
    assert kept.create(store, t)
    if state != "created":
        read = kept.get(store, name)
        assert read is not None and kept.save(store, read, replace(read, state=state, **moved))
    got = kept.get(store, name)
    assert got is not None
    return got


def each_state(store: Store) -> None:
    tranche(store, "new", 3, "created")
    # Burn-in under way: one passed, one failed, one started, one not tested (not final yet).
    tranche(
        store, "burning", 4, "running", phase="burn_in", started_at=AT,
        progress=burn(**{"burning-0": "passed", "burning-1": "failed", "burning-2": "started",
                         "burning-3": "not_tested"}),
    )  # fmt: skip
    # Judged: the pair test condemned one of the two that passed burn-in.
    outcomes = {"judged-0": "passed", "judged-1": "passed", "judged-2": "not_tested"}
    tranche(
        store, "judged", 3, "judged", phase="done", started_at=AT,
        judged_at=AT + timedelta(hours=3),
        progress={**burn(**outcomes), "fabric": fabric(["judged-0", "judged-1"], {"judged-1": "slow"})},
        report={"final": True},
    )  # fmt: skip
    tranche(
        store, "hall-a", 4, "live", phase="done", started_at=AT - timedelta(days=2),
        judged_at=AT - timedelta(days=1),
        progress=burn(**{f"hall-a-{i}": "passed" for i in range(3)}, **{"hall-a-3": "failed"}),
        report={"final": True},
    )  # fmt: skip
    tranche(
        store, "hall-b", 4, "failed", threshold=0.95, phase="done",
        started_at=AT - timedelta(days=2), judged_at=AT - timedelta(hours=20),
        progress=burn(**{f"hall-b-{i}": "passed" for i in range(3)}, **{"hall-b-3": "failed"}),
        report={"final": True},
    )  # fmt: skip


def test_a_tranche_in_each_state(store: Store) -> None:
    each_state(store)
    scrape = Scrape(store)
    for name, current in [
        ("new", "created"), ("burning", "running"), ("judged", "judged"),
        ("hall-a", "live"), ("hall-b", "failed"),
    ]:  # fmt: skip
        for s in ("created", "running", "judged", "live", "failed"):
            want = 1.0 if s == current else 0.0
            assert scrape("computectl_acceptance_state", tranche=name, state=s) == want
    verdicts = {
        "new": (0, 0, 0, 3),
        "burning": (1, 1, 0, 2),
        "judged": (1, 1, 1, 0),
        "hall-a": (3, 1, 0, 0),
        "hall-b": (3, 1, 0, 0),
    }
    for name, counts in verdicts.items():
        got = tuple(
            scrape("computectl_acceptance_nodes", tranche=name, verdict=v)
            for v in ("accepted", "failed", "not_tested", "pending")
        )
        assert got == counts, name
        ratio = scrape("computectl_acceptance_pass_ratio", tranche=name)
        assert ratio == pytest.approx(counts[0] / sum(counts))
    assert scrape("computectl_acceptance_threshold", tranche="hall-b") == 0.95
    assert scrape("computectl_acceptance_threshold", tranche="new") == 0.75
    assert scrape("computectl_acceptance_started_timestamp_seconds", tranche="new") is None
    assert scrape("computectl_acceptance_started_timestamp_seconds", tranche="burning") == (
        AT.timestamp()
    )
    assert scrape("computectl_acceptance_judged_timestamp_seconds", tranche="burning") is None
    assert scrape("computectl_acceptance_judged_timestamp_seconds", tranche="hall-b") == (
        (AT - timedelta(hours=20)).timestamp()
    )


def test_an_empty_store_has_the_families_and_no_series(store: Store) -> None:
    scrape = Scrape(store)
    families = {f.name: f for f in scrape.registry.collect()}
    for name in ("state", "nodes", "pass_ratio", "threshold", "started_timestamp_seconds"):
        assert families[f"computectl_acceptance_{name}"].samples == []


def test_open_tranches_and_only_the_last_closed_keep_series(store: Store) -> None:
    tranche(store, "waiting", 2, "created")
    for i in range(KEEP_CLOSED + 3):
        tranche(
            store, f"old-{i:02d}", 2, "live" if i % 2 else "failed",
            judged_at=AT + timedelta(hours=i), report={"final": True},
        )  # fmt: skip
    shown = {
        s.labels["tranche"]
        for f in Scrape(store).registry.collect()
        if f.name == "computectl_acceptance_threshold"
        for s in f.samples
    }
    last = {f"old-{i:02d}" for i in range(3, KEEP_CLOSED + 3)}
    assert shown == {"waiting"} | last


def test_progress_is_read_again_only_when_the_tranche_moved(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    each_state(store)
    asked: list[list[str]] = []
    runs = kept.runs

    def counting(s: Store, names: list[str]) -> list[kept.Run]:
        asked.append(sorted(names))
        return runs(s, names)

    monkeypatch.setattr(kept, "runs", counting)
    scrape = Scrape(store)
    assert scrape("computectl_acceptance_nodes", tranche="burning", verdict="pending") == 2
    assert asked == [["burning", "hall-a", "hall-b", "judged", "new"]]
    assert scrape("computectl_acceptance_nodes", tranche="burning", verdict="pending") == 2
    assert asked[1:] == [[]]
    read = kept.get(store, "burning")
    assert read is not None
    progress = burn(**{f"burning-{i}": "passed" for i in range(4)})
    assert kept.save(store, read, replace(read, phase="pair_test", progress=progress))
    assert scrape("computectl_acceptance_nodes", tranche="burning", verdict="accepted") == 4
    assert asked[2:] == [["burning"]]
    assert scrape("computectl_acceptance_pass_ratio", tranche="burning") == 1.0


OUTCOMES = st.sampled_from(["waiting", "started", "passed", "failed", "not_tested"])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outcomes=st.lists(OUTCOMES, min_size=1, max_size=12),
    slow=st.sets(st.integers(0, 11), max_size=4),
    final=st.booleans(),
)
def test_the_counts_are_the_reports(
    store: Store, outcomes: list[str], slow: set[int], final: bool
) -> None:
    """Whatever the run did, /metrics counts each verdict as the report does (the report's
    not_tested counts the pending too) without reading the nodes."""
    name = f"t{len(kept.listed(store))}"
    mine = {f"{name}-{i}": o for i, o in enumerate(outcomes)}
    passed = [n for n, o in mine.items() if o == "passed"]
    suspects = {f"{name}-{i}": "slow" for i in slow if f"{name}-{i}" in passed}
    progress = {**burn(**mine), "fabric": fabric(passed, suspects)}
    state = "judged" if final else "running"
    t = tranche(store, name, len(outcomes), state, progress=progress)
    report = build_report(store, t, AT if final else None)
    scrape = Scrape(store)
    got = {
        v: scrape("computectl_acceptance_nodes", tranche=name, verdict=v)
        for v in ("accepted", "failed", "not_tested", "pending")
    }
    assert got["accepted"] == report["accepted"] and got["failed"] == report["failed"]
    assert (got["not_tested"] or 0) + (got["pending"] or 0) == report["not_tested"]
    assert got["pending" if final else "not_tested"] == 0
    ratio = scrape("computectl_acceptance_pass_ratio", tranche=name)
    assert ratio == pytest.approx(report["share"], abs=1e-6)
