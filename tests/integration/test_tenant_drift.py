"""Drift found without asking, on the real test clusters (issue 13's acceptance): a QOS
edited by hand with sacctmgr, and a ResourceQuota edited by hand through the API, show up as
`computectl_tenant_drift` and one `tenant_drift` event after one drift check, with nobody
running `plan`; a second check adds no event; with repair on, the object is restored.

The checks are called as the acting control plane calls them after a sweep, one period
apart (`drift.check(rt, now)`; the period's gate is in the store)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from compute.config import TenantsSettings
from compute.domain import AUTOMATION
from compute.metrics.drift import drift as drift_families
from compute.runtime import Runtime
from compute.services import drift
from compute.store import Store
from compute.tenants.spec import parse_tenant
from scheduler.kubernetes.tenant_objects import QUOTA
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from tests.integration.conftest import KubeCluster, SlurmCluster, runtime_over
from tests.integration.test_dashboards import promtool

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"
MERGE = "application/merge-patch+json"
PERIOD = timedelta(seconds=TenantsSettings().drift_interval_seconds)


def scrape(store: Store) -> str:
    class One(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield from drift_families(store)

    reg = CollectorRegistry()
    reg.register(One())
    return generate_latest(reg).decode()


def drift_events(store: Store, tenant: str) -> list[str]:
    kinds = [drift.DRIFT, drift.CLEARED, drift.REPAIRED]
    return [e.kind for e in reversed(store.events(kinds=kinds)) if e.detail["tenant"] == tenant]


def repairing(rt: Runtime) -> None:
    rt.settings = rt.settings.model_copy(update={"tenants": TenantsSettings(repair_drift=True)})


# -- Slurm: a QOS edited with sacctmgr -------------------------------------------------------


@pytest.fixture
def slurm_rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    tenants = SlurmTenants(
        SlurmCommands(None, slurm_conf=slurm.slurm_conf),
        {"training": "training", "inference": "inference"},
    )
    for name in tenants.managed():
        tenants.delete(name, force=True, grace_seconds=0)


def slurm_tenant(rt: Runtime) -> str:
    name = f"dr{uuid.uuid4().hex[:6]}"
    spec = {"name": name, "users": ["root"], "quotas": [{"pool": "training", "gpus": 16}]}
    rt.tenants.apply(parse_tenant(spec, rt.settings.effective_pools), actor=OPERATOR)
    return name


def grp_tres(slurm: SlurmCluster, qos: str) -> str:
    out = slurm.run("sacctmgr", "-P", "-n", "show", "qos", qos, "format=grptres")
    return out.strip()


@pytest.mark.parametrize("repair", [False, True], ids=["report", "repair"])
def test_a_qos_edited_by_hand_is_drift_after_one_check(
    slurm_rt: Runtime, slurm: SlurmCluster, repair: bool
) -> None:
    rt = slurm_rt
    name = slurm_tenant(rt)
    qos = f"{name}-training"
    t0 = rt.clock.now()
    # The sweeps that built the runtime checked already: this first check is forced.
    first = drift.check(rt, t0, force=True)
    assert first.checked and not first.drifting and not first.errors
    applied = grp_tres(slurm, qos)
    assert "gres/gpu=16" in applied

    slurm.run(
        "sacctmgr", "-i", "modify", "qos", "where", f"name={qos}", "set", "GrpTRES=gres/gpu=64"
    )
    if repair:
        repairing(rt)
    report = drift.check(rt, t0 + PERIOD)
    assert report.checked and not report.errors
    assert [(d.tenant, d.backend, d.object) for d in report.started] == [
        (name, "slurm", f"qos {qos}")
    ]
    assert "gres/gpu=64" in report.started[0].live
    if repair:
        assert report.repaired == [name]
        assert grp_tres(slurm, qos) == applied
        assert drift_events(rt.store, name) == [drift.DRIFT, drift.REPAIRED]
        assert [a.actor for a in rt.store.audit(name) if a.action == drift.REPAIR_ACTION] == [
            AUTOMATION
        ]
        assert "computectl_tenant_drift{" not in scrape(rt.store)
        return
    assert grp_tres(slurm, qos) != applied  # reported, not touched
    assert (
        f'computectl_tenant_drift{{backend="slurm",object="qos {qos}",tenant="{name}"}} 1.0'
        in scrape(rt.store)
    )
    assert drift_events(rt.store, name) == [drift.DRIFT]
    # The next period sees it again: still one event.
    assert drift.check(rt, t0 + 2 * PERIOD).drifting
    assert drift_events(rt.store, name) == [drift.DRIFT]


# -- Kubernetes: a ResourceQuota edited through the API --------------------------------------


@pytest.fixture
def kube_rt(kube: KubeCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    yield runtime
    runtime.close()


@pytest.fixture
def names(api: Any) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def new() -> str:
        made.append(f"dr{uuid.uuid4().hex[:6]}")
        return made[-1]

    yield new
    for name in made:
        try:
            api.delete_namespace(f"tenant-{name}", propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


def gpus_of(api: Any, ns: str) -> str:
    return str(api.read_namespaced_resource_quota(QUOTA, ns).spec.hard["requests.nvidia.com/gpu"])


@pytest.mark.parametrize("repair", [False, True], ids=["report", "repair"])
def test_a_resource_quota_edited_by_hand_is_drift_after_one_check(
    kube_rt: Runtime, api: Any, names: Callable[[], str], repair: bool
) -> None:
    rt = kube_rt
    name = names()
    ns = f"tenant-{name}"
    spec = {"name": name, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 8}]}
    rt.tenants.apply(parse_tenant(spec, rt.settings.effective_pools), actor=OPERATOR)
    t0 = rt.clock.now()
    # The sweeps that built the runtime checked already: this first check is forced.
    first = drift.check(rt, t0, force=True)
    assert first.checked and not first.drifting and not first.errors
    assert gpus_of(api, ns) == "8"

    api.patch_namespaced_resource_quota(
        QUOTA, ns, {"spec": {"hard": {"requests.nvidia.com/gpu": "64"}}}, _content_type=MERGE
    )
    if repair:
        repairing(rt)
    report = drift.check(rt, t0 + PERIOD)
    assert report.checked and not report.errors
    obj = f"resourcequota {ns}/{QUOTA}"
    assert [(d.tenant, d.backend, d.object) for d in report.started] == [(name, "kubernetes", obj)]
    if repair:
        assert report.repaired == [name] and gpus_of(api, ns) == "8"
        assert drift_events(rt.store, name) == [drift.DRIFT, drift.REPAIRED]
        assert not drift.check(rt, t0 + 2 * PERIOD).drifting
        return
    assert gpus_of(api, ns) == "64"
    body = scrape(rt.store)
    assert (
        f'computectl_tenant_drift{{backend="kubernetes",object="{obj}",tenant="{name}"}} 1.0'
        in body
    )
    lint = promtool("check", "metrics", stdin=body)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout
    assert drift_events(rt.store, name) == [drift.DRIFT]
    assert drift.check(rt, t0 + 2 * PERIOD).drifting
    assert drift_events(rt.store, name) == [drift.DRIFT]
    # Put back by hand: the drift clears with one event.
    api.patch_namespaced_resource_quota(
        QUOTA, ns, {"spec": {"hard": {"requests.nvidia.com/gpu": "8"}}}, _content_type=MERGE
    )
    assert drift.check(rt, t0 + 3 * PERIOD).cleared
    assert drift_events(rt.store, name) == [drift.DRIFT, drift.CLEARED]
    assert "computectl_tenant_drift{" not in scrape(rt.store)
