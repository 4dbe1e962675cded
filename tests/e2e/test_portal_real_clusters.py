"""A quota request decided in the portal, in real Chromium, against the real test clusters:
a tenant's admin files it with the keyboard, an operator approves it in /portal/ops, and
the tenant's QOS GrpTRES on Slurm (read back with sacctmgr) or its ResourceQuota on the
Kubernetes API server (read back through the API) takes the new figure; a second request,
declined in the portal, changes nothing there."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from compute.api import create_app
from compute.auth.testing import token_for
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from scheduler.kubernetes.tenant_objects import QUOTA
from tests.e2e.conftest import chromium, free_port, log_in, serving
from tests.integration.conftest import (  # noqa: F401  (fixtures)
    KubeCluster,
    SlurmCluster,
    api,
    kube,
    kube_cluster,
    runtime_over,
    slurm,
    slurm_cluster,
)

pytestmark = pytest.mark.e2e

# An approval runs the backend's apply (several sacctmgr calls, or API writes).
DECIDED_MS = 60_000


@dataclass
class Served:
    rt: Runtime
    base: str
    tenant: str
    # The tenant's GPUs in pool training as the workload manager holds them now.
    live_gpus: Callable[[], int]


def _slurm_gpus(cluster: SlurmCluster, qos: str) -> int:
    out = cluster.run("sacctmgr", "-P", "-n", "show", "qos", "format=name,grptres")
    tres = dict(ln.split("|", 1) for ln in out.splitlines())[qos]
    counts = dict(t.split("=", 1) for t in tres.split(",") if t)
    return int(counts["gres/gpu"])


def _kube_gpus(core: Any, ns: str) -> int:
    return int(core.read_namespaced_resource_quota(QUOTA, ns).spec.hard["requests.nvidia.com/gpu"])


def _tenant_with_16(rt: Runtime, name: str) -> None:
    spec = parse_tenant(
        {"name": name, "users": ["root"], "quotas": [{"pool": "training", "gpus": 16}]},
        rt.settings.effective_pools,
    )
    rt.tenants.apply(spec, actor="operator:test")


@pytest.fixture(params=["slurm", "kubernetes"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A control plane over one real test cluster, with a tenant holding 16 GPUs in pool
    training, served on a free port; the tenant is deleted from the cluster afterwards."""
    name = f"pq{uuid.uuid4().hex[:6]}"
    cluster: SlurmCluster | KubeCluster
    if request.param == "slurm":
        cluster = request.getfixturevalue("slurm")
        assert isinstance(cluster, SlurmCluster)
        slurm_c = cluster

        def live() -> int:
            return _slurm_gpus(slurm_c, f"{name}-training")

    else:
        cluster = request.getfixturevalue("kube")
        core = request.getfixturevalue("api")

        def live() -> int:
            return _kube_gpus(core, f"tenant-{name}")

    rt = runtime_over(cluster.computectl_toml, tmp_path / "data")
    try:
        _tenant_with_16(rt, name)
        port = free_port()
        with serving(create_app(rt), port):
            yield Served(rt, f"http://127.0.0.1:{port}", name, live)
    finally:
        try:
            rt.tenants.delete(name, actor="operator:test", force=True)
        finally:
            rt.close()
            if request.param == "kubernetes":
                _drop_namespace(request.getfixturevalue("api"), f"tenant-{name}")


def _drop_namespace(core: Any, ns: str) -> None:
    """What a delete left behind (it keeps nothing here: the tenant holds no volumes)."""
    try:
        core.delete_namespace(ns, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def ask_with_keyboard(page: Any, base: str, tenant: str, gpus: int, reason: str) -> str:
    """File a request on the tenant's requests page with the keyboard only; its id."""
    page.goto(f"{base}/portal/t/{tenant}/requests")
    page.focus("#pool")
    page.keyboard.type("training")  # the select's type-ahead picks the pool
    assert page.input_value("#pool") == "training"
    page.keyboard.press("Tab")
    page.keyboard.type(str(gpus))
    page.keyboard.press("Tab")
    page.keyboard.type(reason)
    page.keyboard.press("Enter")
    flash = page.wait_for_selector("[data-testid=flash]", timeout=15_000)
    assert flash is not None and f"filed: {gpus} GPUs in training" in flash.inner_text()
    row = page.locator("[data-testid=requests] tr[data-request]").first
    assert "pending" in row.inner_text() and reason in row.inner_text()
    request_id = row.get_attribute("data-request")
    assert request_id
    return str(request_id)


def decide(ops: Any, base: str, request_id: str, verb: str) -> str:
    """Approve (with a note, Enter in the note's field) or decline (Enter on the button) in
    /portal/ops; the flash that says what happened."""
    ops.goto(base + "/portal/ops")
    if verb == "approve":
        ops.focus(f"#note-{request_id}")
        ops.keyboard.type("approved for the next run")
    else:
        ops.focus(f"[data-testid=decline-{request_id}]")
    ops.keyboard.press("Enter")
    flash = ops.wait_for_selector("[data-testid=flash]", timeout=DECIDED_MS)
    assert flash is not None
    return str(flash.inner_text())


def test_a_request_approved_in_the_portal_changes_the_cluster_declined_changes_nothing(
    served: Served, browser: Any
) -> None:
    rt, base, t = served.rt, served.base, served.tenant
    assert served.live_gpus() == 16
    tenant_page = log_in(browser, base, token_for(rt.store, "tenant-admin", tenant=t, name="ada"))
    tenant_page.wait_for_url(f"{base}/portal/t/{t}")
    ops = log_in(browser, base, token_for(rt.store, "operator", name="olga"))

    # -- approved: the workload manager holds the new quota --------------------------------------
    first = ask_with_keyboard(tenant_page, base, t, 24, "the next run is larger")
    assert served.live_gpus() == 16  # nothing changes while it waits
    said = decide(ops, base, first, "approve")
    assert "approved" in said, said
    assert served.live_gpus() == 24
    tenant_page.goto(f"{base}/portal/t/{t}")
    assert "24" in tenant_page.inner_text("[data-testid=quotas]")

    # -- declined: nothing changes ----------------------------------------------------------------
    second = ask_with_keyboard(tenant_page, base, t, 40, "and larger still")
    said = decide(ops, base, second, "decline")
    assert "declined" in said, said
    assert served.live_gpus() == 24
    tenant_page.goto(f"{base}/portal/t/{t}/requests")
    states = {
        r.get_attribute("data-request"): r.locator("[data-testid=state]").inner_text()
        for r in tenant_page.locator("[data-testid=requests] tr[data-request]").all()
    }
    assert states == {first: "approved", second: "declined"}
    entries = [(e.action, e.target) for e in rt.store.audit(limit=20)]
    assert ("quota_request.approve", f"quota-request/{first}") in entries
    assert ("quota_request.decline", f"quota-request/{second}") in entries
