"""Pods' GPU time kept in the store: each interval counted once whoever counts and however
often (replicas, restarts, the same pod twice in one read), exact to the microsecond, split
by UTC day; a deleted pod stays counted; marks older than the retention go and are never
counted again; the report gives the counted days plus what pods still there held since."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.services import usage_samples as samples
from compute.store import Store
from compute.store import usage as kept
from scheduler.errors import Unreachable
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.kubernetes.usage import KubernetesUsage, PodSpan

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
S = timedelta(seconds=1)
US = 1_000_000


def span(
    uid: str = "u1",
    gpus: int = 4,
    start: datetime = T0,
    end: datetime | None = None,
    tenant: str = "t",
    until: datetime = T0,
) -> PodSpan:
    ended = end is not None
    return PodSpan(uid, tenant, "training", "H100-SXM", gpus, start, end or until, ended)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def used(store: Store, tenant: str = "t") -> int:
    b = kept.budgets(store).get(tenant)
    return 0 if b is None else b.gpu_us


def by_day(store: Store, tenant: str = "t") -> int:
    return sum(d.gpu_us for d in kept.days(store, tenant, T0.date(), T0.date() + timedelta(9)))


def test_a_running_pod_is_counted_up_to_each_sample_once(store: Store) -> None:
    for minutes in (10, 10, 30, 20, 60):  # the same time twice; one older than the last
        now = T0 + timedelta(minutes=minutes)
        kept.record(store, [span(until=now)], now)
    assert used(store) == 4 * 60 * 60 * US
    # Across midnight (22:00 → 23:00 is the 1st; nothing yet on the 2nd).
    days = kept.days(store, "t", T0.date(), T0.date() + timedelta(1))
    assert [(d.day.day, d.gpu_us) for d in days] == [(1, 4 * 3600 * US)]


def test_deleted_pods_stay_counted_and_ended_ones_count_to_their_end(store: Store) -> None:
    now = T0 + timedelta(hours=3)  # 01:00 on the 2nd
    kept.record(store, [span(until=now), span("u2", 2, end=T0 + timedelta(hours=1))], now)
    first = used(store)
    assert first == (4 * 3 * 3600 + 2 * 3600) * US
    # Both pods gone from the cluster: what was counted stays.
    kept.record(store, [], now + timedelta(hours=1))
    assert used(store) == first == by_day(store)
    days = {d.day.day: d.gpu_us for d in kept.days(store, "t", T0.date(), now.date())}
    assert days == {1: (4 * 2 + 2) * 3600 * US, 2: 4 * 3600 * US}


def test_replicas_counting_the_same_pods_count_them_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = Store.open(url), Store.open(url)
    try:
        for minutes in (5, 5, 7, 6, 9):
            now = T0 + timedelta(minutes=minutes)
            for replica in (a, b):
                kept.record(replica, [span(until=now), span(until=now)], now)
        assert used(a) == 4 * 9 * 60 * US == by_day(b)
    finally:
        a.close()
        b.close()


def test_a_pod_first_seen_late_counts_from_the_retention_horizon_and_old_marks_go(
    store: Store,
) -> None:
    now = T0 + timedelta(days=40)
    old = span("old", 1, start=T0, until=now)
    kept.record(store, [old], now)
    assert used(store) == 1 * kept.micros(kept.RETENTION)
    # An ended pod's mark, 32 days on, is gone; the pod (still listed) counts nothing more.
    ended = span("ended", 1, start=now - S * 10, end=now)
    kept.record(store, [ended], now)
    later = now + timedelta(days=32)
    kept.record(store, [ended], later)
    assert "ended" not in kept.marks(store, "t")
    before = used(store)
    kept.record(store, [ended], later + S)
    assert used(store) == before


times = st.lists(st.integers(min_value=0, max_value=3 * 86_400), min_size=1, max_size=8)
pods = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=16),  # gpus
        st.integers(min_value=0, max_value=86_400),  # start offset
        st.one_of(st.none(), st.integers(min_value=0, max_value=2 * 86_400)),  # length
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(times=times, pods=pods)
def test_any_samples_sum_to_what_the_pods_held_up_to_the_last(
    store: Store, times: list[int], pods: list[tuple[int, int, int | None]]
) -> None:
    tenant = f"h{uuid.uuid4().hex[:8]}"  # one store for every example: each its own tenant
    for t in times:  # in any order, repeated
        now = T0 + t * S
        spans = [
            span(
                f"{tenant}-{i}", g, T0 + s * S, None if n is None else T0 + (s + n) * S, tenant, now
            )
            for i, (g, s, n) in enumerate(pods)
            if T0 + s * S <= now
        ]
        kept.record(store, spans, now)
    last = T0 + max(times) * S
    want = 0
    for g, s, n in pods:
        end = last if n is None else min(last, T0 + (s + n) * S)
        want += g * max(0, kept.micros(end - (T0 + s * S)))
    assert used(store, tenant) == want == by_day(store, tenant)


# -- the report: counted days plus what pods still there held since ------------------------


@dataclass
class Cluster:
    kube: InMemoryKube
    source: KubernetesUsage


def cluster() -> Cluster:
    kube = InMemoryKube()
    kube.add_node("kwok-gpu-001", {"computectl.io/pool": "training"})
    kube.apply_object(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "tenant-t", "labels": to.marker("t")},
        }
    )
    return Cluster(kube, KubernetesUsage(kube, {"training": {"computectl.io/pool": "training"}}))


def pod(name: str, gpus: int, start: datetime) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "tenant-t", "uid": f"uid-{name}"},
        "spec": {
            "nodeName": "kwok-gpu-001",
            "containers": [{"name": "m", "resources": {"requests": {"nvidia.com/gpu": gpus}}}],
        },
        "status": {"phase": "Running", "startTime": start.isoformat()},
    }


def test_the_report_is_counted_time_plus_the_tail_and_survives_deletion(store: Store) -> None:
    c = cluster()
    sources = [(c.source, {"training"})]
    c.kube.pods[("tenant-t", "a")] = pod("a", 2, T0)
    t1 = T0 + timedelta(hours=1)
    assert samples.sample(store, sources, t1).pods == 1
    t2 = T0 + timedelta(hours=3)  # a has run 3 h; counted for 1 h
    got = samples.counted(store, sources, "t", T0 - timedelta(days=1), t2)
    assert sum(got.us.values()) == 2 * 3 * 3600 * US
    assert got.notes == [samples.NOTE]
    del c.kube.pods[("tenant-t", "a")]
    # Gone before the second sample: the hour counted stays, the rest was never seen.
    assert samples.sample(store, sources, t2).pods == 0
    got = samples.counted(store, sources, "t", T0 - timedelta(days=1), t2)
    assert sum(got.us.values()) == 2 * 3600 * US


def test_a_cluster_that_cannot_be_read_costs_nothing_counted(store: Store) -> None:
    c = cluster()
    sources = [(c.source, {"training"})]
    c.kube.pods[("tenant-t", "a")] = pod("a", 1, T0)
    samples.sample(store, sources, T0 + timedelta(hours=1))
    with c.kube.down():
        out = samples.sample(store, sources, T0 + timedelta(hours=2))
        assert out.errors and "GPU usage not counted" in out.errors[0]
        got = samples.counted(store, sources, "t", T0 - timedelta(days=1), T0 + timedelta(hours=2))
        assert sum(got.us.values()) == 3600 * US
        assert any("cannot be read now" in n for n in got.notes)
    # Back: counted from its mark, nothing lost while the pod stayed.
    samples.sample(store, sources, T0 + timedelta(hours=3))
    assert used(store) == 3 * 3600 * US


def test_kubernetes_usage_is_a_sampled_source() -> None:
    c = cluster()
    assert isinstance(c.source, samples.SampledUsage)
    with c.kube.down(), pytest.raises(Unreachable):
        c.source.spans(T0)
