"""Quota requests on the real test clusters, through the API: an approved request changes
the tenant's QOS GrpTRES on Slurm and its ResourceQuota on the Kubernetes API server; a
declined one changes nothing on either."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kubernetes.client.exceptions import ApiException

from compute.api import create_app
from compute.auth.testing import bearer, token_for
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from scheduler.kubernetes.tenant_objects import QUOTA
from tests.integration.conftest import KubeCluster, SlurmCluster, runtime_over
from tests.integration.test_slurm_tenants import slurm_tenants

pytestmark = pytest.mark.integration


def served(rt: Runtime, tenant: str) -> tuple[TestClient, dict[str, str], dict[str, str]]:
    admin = bearer(token_for(rt.store, "tenant-admin", tenant=tenant))
    operator = bearer(token_for(rt.store, "operator"))
    return TestClient(create_app(rt)), admin, operator


def ask_and_decide(
    client: TestClient,
    admin: dict[str, str],
    operator: dict[str, str],
    tenant: str,
    gpus: int,
    verb: str,
) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/tenants/{tenant}/quota-requests",
        json={"pool": "training", "gpus": gpus, "reason": "the next run is larger"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    decided = client.post(f"/api/v1/quota-requests/{r.json()['id']}/{verb}", headers=operator)
    assert decided.status_code == 200, decided.text
    body: dict[str, Any] = decided.json()
    return body


# -- Slurm --------------------------------------------------------------------------------------

SLURM_TENANT = "quota-lab"


@pytest.fixture
def slurm_rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    tenants = slurm_tenants(slurm)
    for name in tenants.managed():
        tenants.delete(name, force=True, grace_seconds=0)


def grp_tres(slurm: SlurmCluster, qos: str) -> str:
    out = slurm.run("sacctmgr", "-P", "-n", "show", "qos", "format=name,grptres")
    return dict(ln.split("|", 1) for ln in out.splitlines())[qos]


def test_slurm_approved_request_changes_the_qos_declined_changes_nothing(
    slurm_rt: Runtime, slurm: SlurmCluster
) -> None:
    rt, t = slurm_rt, SLURM_TENANT
    spec = parse_tenant(
        {"name": t, "users": ["root"], "quotas": [{"pool": "training", "gpus": 16}]},
        rt.settings.effective_pools,
    )
    rt.tenants.apply(spec, actor="operator:test")
    qos = f"{t}-training"
    assert "gres/gpu=16" in grp_tres(slurm, qos)
    client, admin, operator = served(rt, t)
    with client:
        done = ask_and_decide(client, admin, operator, t, 24, "approve")
        assert done["state"] == "approved"
        after = grp_tres(slurm, qos)
        assert "gres/gpu=24" in after and "gres/gpu:h100=24" in after
        declined = ask_and_decide(client, admin, operator, t, 40, "decline")
        assert declined["state"] == "declined"
        assert grp_tres(slurm, qos) == after
        # The tenant's page shows its account, QOS and partition.
        page = client.get(f"/portal/t/{t}", headers=admin).text
        assert f"-A {t} -p training" in page and qos in page


# -- Kubernetes ---------------------------------------------------------------------------------


@pytest.fixture
def kube_rt(kube: KubeCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    yield runtime
    runtime.close()


def hard_gpus(api: Any, ns: str) -> str:
    return str(api.read_namespaced_resource_quota(QUOTA, ns).spec.hard["requests.nvidia.com/gpu"])


def test_kubernetes_approved_request_changes_the_quota_declined_changes_nothing(
    kube_rt: Runtime, api: Any
) -> None:
    rt, t = kube_rt, f"qr{uuid.uuid4().hex[:6]}"
    ns = f"tenant-{t}"
    try:
        spec = parse_tenant(
            {"name": t, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 16}]},
            rt.settings.effective_pools,
        )
        rt.tenants.apply(spec, actor="operator:test")
        assert hard_gpus(api, ns) == "16"
        client, admin, operator = served(rt, t)
        with client:
            assert ask_and_decide(client, admin, operator, t, 24, "approve")["state"] == "approved"
            assert hard_gpus(api, ns) == "24"
            assert ask_and_decide(client, admin, operator, t, 8, "decline")["state"] == "declined"
            assert hard_gpus(api, ns) == "24"
            # Its people download a short-lived kubeconfig for the namespace from the portal.
            r = client.post(f"/portal/t/{t}/kubeconfig", headers=admin)
            assert r.status_code == 200, r.text
            assert "attachment" in r.headers["content-disposition"]
            # JSON, which is YAML too.
            config = json.loads(r.text)
            assert [c["context"]["namespace"] for c in config["contexts"]] == [ns]
    finally:
        try:
            api.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
            api.delete_namespace(ns, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
