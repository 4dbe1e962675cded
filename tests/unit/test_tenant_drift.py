"""Tenants' drift found without asking, over the in-memory Kubernetes API server: a hand
edit of a tenant's ResourceQuota is one `tenant_drift` event and a metric after one check,
however many checks see it; fixed, one `tenant_drift_cleared`; checks at most every
interval, by the acting control plane only; an unreachable backend records nothing; with
repair on, the spec is applied again by automation (the real clusters are in
tests/integration/test_tenant_drift.py)."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from compute.backends import Backends
from compute.clock import FuncClock
from compute.config import Settings, load_settings
from compute.domain import AUTOMATION
from compute.metrics.drift import drift as drift_families
from compute.runtime import Runtime
from compute.services import drift
from compute.services.tenants import PARTIAL, TenantService
from compute.store import Store
from compute.store import drift as kept
from compute.tenants.spec import spec_to_json
from scheduler.errors import Conflict, Unreachable
from scheduler.kubernetes import KubernetesTenants
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.protocol import JobInfo
from scheduler.tenants import Change, ChangeKind, GpuQuota, TenantSpec

T0 = datetime(2026, 12, 2, 8, tzinfo=UTC)
POOLS = {"training": {"computectl.io/pool": "training"}}
QUOTA_OBJECT = f"resourcequota tenant-a/{to.QUOTA}"


@dataclass
class FakeRuntime:
    """What `drift.check` reads of a Runtime: settings, store, backends, tenants, may_act."""

    settings: Settings
    store: Store
    backends: Backends
    tenants: TenantService
    acting: bool = True
    now: list[datetime] = field(default_factory=lambda: [T0])

    def may_act(self) -> bool:
        return self.acting


def runtime(tmp_path: Path, store: Store, backend: Any, **tenants: Any) -> Runtime:
    settings = load_settings(
        None, env={}, overrides={"data_dir": str(tmp_path), "tenants": tenants}
    )
    backends = Backends()
    backends.add("training", cast(Any, None), backend)
    fake = FakeRuntime(
        settings, store, backends, TenantService(store, backends, FuncClock(lambda: T0))
    )
    return cast(Runtime, fake)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def kube() -> InMemoryKube:
    return InMemoryKube()


def spec(name: str = "a", gpus: int = 8) -> TenantSpec:
    return TenantSpec(name, ("alice",), (GpuQuota("training", "H100-SXM", gpus),))


def hand_edit(kube: InMemoryKube, gpus: int, ns: str = "tenant-a") -> None:
    obj = kube.get_object("ResourceQuota", to.QUOTA, ns)
    assert obj is not None
    obj["spec"]["hard"]["requests.nvidia.com/gpu"] = str(gpus)
    kube.replace_object(obj)


def scrape(store: Store) -> str:
    class One(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield from drift_families(store)

    reg = CollectorRegistry()
    reg.register(One())
    return generate_latest(reg).decode()


def kinds(store: Store) -> list[str]:
    found = store.events(kinds=[drift.DRIFT, drift.CLEARED, drift.REPAIRED])
    return [e.kind for e in reversed(found)]


def test_a_hand_edited_quota_is_one_event_and_a_metric_until_it_is_fixed(
    tmp_path: Path, store: Store, kube: InMemoryKube
) -> None:
    tenants = KubernetesTenants(kube, POOLS)
    rt = runtime(tmp_path, store, tenants)
    rt.tenants.apply(spec(), actor="operator:test")
    first = drift.check(rt, T0)
    assert first.checked and not first.drifting and not first.errors
    assert "computectl_tenant_drift{" not in scrape(store)

    hand_edit(kube, 64)
    found = drift.check(rt, T0 + timedelta(minutes=5))
    assert [(d.tenant, d.backend, d.object, d.change) for d in found.started] == [
        ("a", "kubernetes", QUOTA_OBJECT, "update")
    ]
    assert "64" in found.started[0].live and "8" in found.started[0].spec
    body = scrape(store)
    assert (
        f'computectl_tenant_drift{{backend="kubernetes",object="{QUOTA_OBJECT}",tenant="a"}} 1.0'
        in body
    )
    assert 'computectl_tenant_drift_check_failing{backend="kubernetes"} 0.0' in body
    (event,) = store.events(kinds=[drift.DRIFT])
    assert event.actor == AUTOMATION and event.detail["object"] == QUOTA_OBJECT
    assert "differs from its spec" in event.reason

    # Seen again: still drifting, no second event; the spec's object is left as edited.
    again = drift.check(rt, T0 + timedelta(minutes=10))
    assert [d.object for d in again.drifting] == [QUOTA_OBJECT] and not again.started
    assert kinds(store) == [drift.DRIFT]
    assert (
        kube.get_object("ResourceQuota", to.QUOTA, "tenant-a")["spec"]["hard"][  # type: ignore[index]
            "requests.nvidia.com/gpu"
        ]
        == "64"
    )

    rt.tenants.apply(spec(), actor="operator:test")
    cleared = drift.check(rt, T0 + timedelta(minutes=15))
    assert [d.object for d in cleared.cleared] == [QUOTA_OBJECT]
    assert kinds(store) == [drift.DRIFT, drift.CLEARED]
    assert "computectl_tenant_drift{" not in scrape(store)


def test_checks_run_at_most_every_interval_by_the_acting_control_plane_only(
    tmp_path: Path, store: Store, kube: InMemoryKube
) -> None:
    rt = runtime(tmp_path, store, KubernetesTenants(kube, POOLS), drift_interval_seconds=300)
    assert drift.check(rt, T0).checked
    assert not drift.check(rt, T0 + timedelta(seconds=299)).checked
    assert drift.check(rt, T0 + timedelta(seconds=300)).checked
    # The period counts from the store: a replica that takes over waits out the same one.
    other = runtime(tmp_path, store, KubernetesTenants(kube, POOLS))
    assert not drift.check(other, T0 + timedelta(seconds=400)).checked
    cast(FakeRuntime, rt).acting = False
    assert not drift.check(rt, T0 + timedelta(hours=1)).checked
    off = runtime(tmp_path, store, KubernetesTenants(kube, POOLS), drift_interval_seconds=0)
    assert not drift.check(off, T0 + timedelta(days=1)).checked


def test_an_unreachable_backend_is_no_evidence(
    tmp_path: Path, store: Store, kube: InMemoryKube
) -> None:
    rt = runtime(tmp_path, store, KubernetesTenants(kube, POOLS))
    rt.tenants.apply(spec(), actor="operator:test")
    hand_edit(kube, 64)
    drift.check(rt, T0)
    rt.tenants.apply(spec(), actor="operator:test")  # fixed, but nobody can see it now
    with kube.down():
        down = drift.check(rt, T0 + timedelta(minutes=5))
    assert down.checked and down.errors and "cannot read kubernetes" in down.errors[0]
    # The drift stays as last seen; the check says it failed; no event either way.
    assert [d.object for d in kept.drifts(store)] == [QUOTA_OBJECT]
    (c,) = kept.checks(store)
    assert c.error and c.checked_at == T0 and c.tried_at == T0 + timedelta(minutes=5)
    assert 'computectl_tenant_drift_check_failing{backend="kubernetes"} 1.0' in scrape(store)
    assert kinds(store) == [drift.DRIFT]
    assert drift.check(rt, T0 + timedelta(minutes=10)).cleared
    assert kinds(store) == [drift.DRIFT, drift.CLEARED]


def test_with_repair_on_the_spec_is_applied_again_by_automation(
    tmp_path: Path, store: Store, kube: InMemoryKube
) -> None:
    rt = runtime(tmp_path, store, KubernetesTenants(kube, POOLS), repair_drift=True)
    rt.tenants.apply(spec(), actor="operator:test")
    hand_edit(kube, 64)
    done = drift.check(rt, T0)
    assert done.repaired == ["a"] and not done.errors
    live = kube.get_object("ResourceQuota", to.QUOTA, "tenant-a")
    assert live is not None and live["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    assert kinds(store) == [drift.DRIFT, drift.REPAIRED]
    (repaired,) = store.events(kinds=[drift.REPAIRED])
    assert repaired.detail["objects"] == [f"kubernetes {QUOTA_OBJECT}"]
    (audit,) = [a for a in store.audit("a") if a.action == drift.REPAIR_ACTION]
    assert audit.actor == AUTOMATION
    assert not kept.drifts(store)
    assert not drift.check(rt, T0 + timedelta(minutes=5)).drifting


class Scripted:
    """A tenant backend double answering what a test says (not a backend under test)."""

    kind = "scripted"

    def __init__(self, answers: dict[str, list[Change] | Exception]) -> None:
        self.answers = answers

    def plan(self, spec: TenantSpec) -> list[Change]:
        answer = self.answers[spec.name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def plan_delete(self, name: str) -> list[Change]:
        return [Change(ChangeKind.DELETE, f"account {name}", "live", "")]

    def managed(self) -> list[str]:
        return sorted(self.answers)

    def apply(self, spec: TenantSpec) -> list[Change]:
        raise AssertionError("a drift check never applies")

    def delete(self, name: str, **_: Any) -> list[Change]:
        raise AssertionError("a drift check never deletes")

    def jobs(self, name: str) -> list[JobInfo]:
        return []


def put(store: Store, s: TenantSpec, state: str = "active") -> None:
    with store.transaction() as tx:
        tx.put_tenant(s.name, spec_to_json(s), state, T0)


def test_a_tenant_that_cannot_be_planned_keeps_its_drift_and_others_are_checked(
    tmp_path: Path, store: Store
) -> None:
    drifted = [Change(ChangeKind.UPDATE, "qos a-training", "GrpTRES=gres/gpu=64", "x")]
    backend = Scripted({"a": drifted, "b": drifted, "p": drifted})
    rt = runtime(tmp_path, store, backend)
    for name in "ab":
        put(store, spec(name))
    put(store, spec("p"), PARTIAL)  # an apply not finished: not drift
    assert {d.tenant for d in drift.check(rt, T0).started} == {"a", "b"}
    backend.answers["a"] = Conflict("objects of that name that computectl did not make")
    backend.answers["b"] = Unreachable("sacctmgr: timed out")
    later = drift.check(rt, T0 + timedelta(hours=1))
    assert len(later.errors) == 2 and not later.cleared
    # Not one tenant read: the backend's check failed, nothing changed.
    assert kept.checks(store)[0].error
    backend.answers["b"] = []
    assert [d.tenant for d in drift.check(rt, T0 + timedelta(hours=2)).cleared] == ["b"]
    assert {d.tenant for d in kept.drifts(store)} == {"a"}


def test_a_tenant_deleted_takes_its_drift_along_without_an_event(
    tmp_path: Path, store: Store
) -> None:
    backend = Scripted({"a": [Change(ChangeKind.CREATE, "account a", "", "users=alice")]})
    rt = runtime(tmp_path, store, backend)
    put(store, spec("a"))
    drift.check(rt, T0)
    with store.transaction() as tx:
        tx.delete_tenant("a")
    backend.answers.clear()
    drift.check(rt, T0 + timedelta(hours=1))
    assert not kept.drifts(store) and kinds(store) == [drift.DRIFT]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=600), st.text(max_size=300), st.text(max_size=300))
def test_whatever_a_backend_reports_is_kept_as_printable_text(
    tmp_path: Path, store: Store, target: str, before: str, after: str
) -> None:
    """A hand edit is outside input: any object name and state are stored, evented and
    exported as safe text of bounded length."""
    name = f"t{uuid.uuid4().hex[:8]}"
    backend = Scripted({name: [Change(ChangeKind.UPDATE, target or "x", before, after)]})
    rt = runtime(tmp_path, store, backend)
    put(store, spec(name))
    drift.check(rt, T0, force=True)
    (d,) = [d for d in kept.drifts(store) if d.tenant == name]
    assert len(d.object) <= kept.OBJECT_CHARS
    for text in (d.object, d.live, d.spec):
        assert not {unicodedata.category(c) for c in text} & {"Cc", "Cs", "Cn"}
    (event,) = [e for e in store.events(kinds=[drift.DRIFT]) if e.detail["tenant"] == name]
    assert event.detail["object"] == d.object
    scrape(store)
    with store.transaction() as tx:
        tx.delete_tenant(name)
