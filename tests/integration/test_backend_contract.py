"""One contract for every backend: the `WorkloadManager` protocol and what the control plane
does when its backend cannot be reached, run alike on the simulated backend, the shipped
doubles (scheduler.slurm.testing, scheduler.kubernetes.testing) and the real test clusters
(testenv/slurm, testenv/kubernetes)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compute.backends import Wired, WiringContext
from compute.config import PoolSettings, load_settings
from compute.domain import EventKind, Node
from compute.errors import BackendError
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from compute.testing import make_runtime
from health.policy import Lifecycle
from scheduler.errors import NotFound, Unreachable
from scheduler.kubernetes import KubernetesTenants, KubernetesWorkloadManager
from scheduler.kubernetes.testing import UNREACHABLE as UNREACHABLE_KUBE
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.protocol import WorkloadManager
from scheduler.slurm import SlurmWorkloadManager
from scheduler.slurm.testing import UNREACHABLE, InMemorySlurm
from scheduler.tenants import ChangeKind, TenantBackend, TenantSpec
from tests.integration.conftest import runtime_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"
QUIET = {"new_nodes": "in_service", "periodic_burn_in_days": 0}


@dataclass
class Target:
    """A control plane over one backend, and how a test looks at that backend."""

    rt: Runtime
    nodes: tuple[str, str]  # two nodes of one pool, idle and in service
    reason: Callable[[str], str]  # the drain reason the backend shows for a node ("" if none)
    outage: Callable[[], contextlib.AbstractContextManager[None]] | None  # backend unreachable
    unreachable: str = ""  # what its error says then

    @property
    def tenants(self) -> tuple[TenantBackend, str] | None:
        """The tenant backend of the nodes' pool, and the pool (None: the backend has none)."""
        node = self.rt.store.node(self.nodes[0])
        assert node is not None
        tb = self.rt.backends.tenants_by_pool.get(node.pool)
        return (tb, node.pool) if tb is not None else None

    @property
    def wm(self) -> WorkloadManager:
        node = self.rt.store.node(self.nodes[0])
        assert node is not None
        return self.rt.backends.for_pool(node.pool)


def _status_reason(rt: Runtime, name: str) -> str:
    node = rt.store.node(name)
    assert node is not None
    wm = rt.backends.for_pool(node.pool)
    return next(s.reason for s in wm.list_nodes() if s.name == name)


def _simulated(tmp_path: Path) -> Iterator[Target]:
    rt = make_runtime(tmp_path, config={"remediation": QUIET}, racks=2, target_utilisation=0)
    rt.sweep()
    names = sorted(n.name for n in rt.store.nodes() if n.pool == "training")
    yield Target(rt, (names[0], names[1]), lambda n: _status_reason(rt, n), None)
    rt.close()


def _slurm_double(tmp_path: Path) -> Iterator[Target]:
    slurm = InMemorySlurm.of({f"gpu-{i:03}": "training" for i in range(1, 5)})

    def build(pools: list[PoolSettings], ctx: WiringContext) -> dict[str, Wired]:
        wm = SlurmWorkloadManager(slurm, {"training": "training"})
        return {p.name: Wired(wm) for p in pools}

    pool = {"name": "training", "backend": "slurm", "gpu_model": "H100-SXM"}
    settings = load_settings(
        None,
        env={},
        overrides={"data_dir": str(tmp_path), "pools": [pool], "remediation": QUIET},
    )
    rt = Runtime.build(settings, wiring={"slurm": build})
    rt.sweep()
    yield Target(
        rt, ("gpu-001", "gpu-002"), lambda n: slurm.reasons().get(n, ""), slurm.down, UNREACHABLE
    )
    rt.close()


def _kubernetes_double(tmp_path: Path) -> Iterator[Target]:
    kube = InMemoryKube()
    for i in range(1, 5):
        kube.add_node(f"gpu-{i}", {"computectl.io/pool": "training"})
    kube.add_pod("team-a", "train-0", "gpu-3", gpus=4)

    def build(pools: list[PoolSettings], ctx: WiringContext) -> dict[str, Wired]:
        wm = KubernetesWorkloadManager(kube, {"training": {"computectl.io/pool": "training"}})
        tenants = KubernetesTenants(kube, wm.pools, wm.gpu_resource)
        return {p.name: Wired(wm, tenants) for p in pools}

    pool = {"name": "training", "backend": "kubernetes", "gpu_model": "H100-SXM"}
    settings = load_settings(
        None,
        env={},
        overrides={"data_dir": str(tmp_path), "pools": [pool], "remediation": QUIET},
    )
    rt = Runtime.build(settings, wiring={"kubernetes": build})
    rt.sweep()

    def reason(node: str) -> str:
        notes = kube.nodes[node]["metadata"].get("annotations") or {}
        return str(notes.get("computectl.io/drain-reason", ""))

    yield Target(rt, ("gpu-1", "gpu-2"), reason, kube.down, UNREACHABLE_KUBE)
    rt.close()


def _slurm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    slurm = request.getfixturevalue("slurm")

    @contextlib.contextmanager
    def outage() -> Iterator[None]:
        pid = slurm.ctld_pid()
        os.kill(pid, signal.SIGTERM)
        slurm.wait("slurmctld to exit", lambda: not Path(f"/proc/{pid}").exists(), 30)
        try:
            yield
        finally:
            slurm.up()

    rt = runtime_over(slurm.computectl_toml, tmp_path)
    reasons: Callable[[str], str] = lambda n: slurm.reasons().get(n, "")  # noqa: E731
    yield Target(rt, ("gpu-001", "gpu-002"), reasons, outage, "Unable to contact slurm controller")
    rt.close()


def _kubernetes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    from tests.integration.kube_backend_support import (
        REASON,
        exited,
        kwok_takes_over,
        node_marks,
    )

    kube = request.getfixturevalue("kube")
    api: Any = request.getfixturevalue("api")

    @contextlib.contextmanager
    def outage() -> Iterator[None]:
        pid = kube.apiserver_pid()
        # SIGKILL: on SIGTERM it drains its long-running requests (watches) for many seconds.
        os.kill(pid, signal.SIGKILL)
        kube.wait("kube-apiserver to exit", lambda: exited(pid), 30)
        try:
            yield
        finally:
            kube.up()
            kwok_takes_over(kube)

    rt = runtime_over(kube.computectl_toml, tmp_path)
    pools = {n.name: n.pool for n in rt.store.nodes()}
    pool = pools["kwok-gpu-005"]
    second = next(n for n in sorted(pools) if pools[n] == pool and n != "kwok-gpu-005")
    yield Target(
        rt,
        ("kwok-gpu-005", second),
        lambda n: node_marks(api, n)[2].get(REASON, ""),
        outage,
        "connection refused",
    )
    rt.close()
    for wm, _ in rt.backends.groups():
        wm.client.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["simulated", "slurm-double", "kubernetes-double", "slurm", "kubernetes"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    name = request.param
    if name == "simulated":
        yield from _simulated(tmp_path)
    elif name == "slurm-double":
        yield from _slurm_double(tmp_path)
    elif name == "kubernetes-double":
        yield from _kubernetes_double(tmp_path)
    elif name == "slurm":
        yield from _slurm(request, tmp_path)
    else:
        yield from _kubernetes(request, tmp_path)


def stored(rt: Runtime, name: str) -> Node:
    node = rt.store.node(name)
    assert node is not None
    return node


def drained(wm: WorkloadManager, name: str) -> bool:
    return next(s.drain for s in wm.list_nodes() if s.name == name)


def test_the_workload_manager_protocol(target: Target) -> None:
    wm, (a, b) = target.wm, target.nodes
    listed = {s.name: s for s in wm.list_nodes()}
    assert {a, b} <= set(listed)
    assert not listed[a].drain and listed[a].gpus_total > 0
    assert isinstance(wm.jobs_on(a), list) and isinstance(wm.allocations(), list)
    # Idempotent: draining twice replaces the reason; resuming twice is fine.
    wm.drain(a, "computectl: one")
    wm.drain(a, "computectl: two")
    assert drained(wm, a) and target.reason(a) == "computectl: two"
    wm.resume(a)
    wm.resume(a)
    assert not drained(wm, a) and target.reason(a) == ""
    with pytest.raises(NotFound):
        wm.drain("no-such-node-999", "computectl: test")
    # Many at once: every node done, nothing failed.
    report = wm.drain_many([a, b], "computectl: batch")
    assert not report.failed and drained(wm, a) and drained(wm, b)
    assert target.reason(b) == "computectl: batch"
    assert not wm.resume_many([a, b]).failed
    assert not drained(wm, a) and not drained(wm, b)


def test_backend_unreachable_records_nothing_and_converges_after(target: Target) -> None:
    if target.outage is None:
        pytest.skip("the simulated backend is in-process: it cannot be unreachable")
    rt, node = target.rt, target.nodes[0]
    with target.outage():
        with pytest.raises(BackendError, match=re.escape(target.unreachable)) as err:
            rt.nodes.drain(node, "lost GPU", actor=OPERATOR)
        assert isinstance(err.value.__cause__, Unreachable)
        assert (stored(rt, node).state, stored(rt, node).drain_reason) == (
            Lifecycle.IN_SERVICE,
            "",
        )
        kinds = [e.kind for e in rt.store.events(node=node, limit=20)]
        assert EventKind.DRAIN not in kinds and EventKind.ACTION_FAILED in kinds
        report = rt.sweep()
        assert report.errors and target.wm.kind in report.errors[0]
        assert stored(rt, node).state is Lifecycle.IN_SERVICE
    rt.nodes.drain(node, "lost GPU", actor=OPERATOR)
    assert not rt.sweep().errors
    assert target.reason(node) == "computectl: operator: lost GPU"
    assert stored(rt, node).state is Lifecycle.DRAINED


def test_the_tenant_protocol(target: Target) -> None:
    """plan, apply, a second apply changes nothing, managed, delete: through the protocol."""
    if target.tenants is None:
        pytest.skip("the Slurm double holds no accounting (sacctmgr): tenants on the real one")
    tb, pool = target.tenants
    name = f"contract-{pool}"
    pools = target.rt.settings.effective_pools

    def spec_of(gpus: int) -> TenantSpec:
        quotas = [{"pool": pool, "gpus": gpus}]
        return parse_tenant({"name": name, "quotas": quotas}, pools).for_pools({pool})

    spec = spec_of(8)
    with contextlib.suppress(NotFound):
        tb.delete(name, force=True, grace_seconds=0, purge_data=True)  # a run cut short
    plan = tb.plan(spec)
    assert plan and all(c.kind is ChangeKind.CREATE for c in plan)
    assert tb.apply(spec) == plan
    assert tb.plan(spec) == [] and tb.apply(spec) == []
    assert name in tb.managed()
    assert tb.jobs(name) == []
    assert tb.plan(spec_of(16)) != []
    assert tb.plan_delete(name)
    # A namespace ends after its content: what a delete leaves is no longer the tenant's.
    assert tb.delete(name) and name not in tb.managed()
