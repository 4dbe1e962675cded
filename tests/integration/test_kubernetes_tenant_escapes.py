"""A Kubernetes tenant's users trying to get around what computectl enforces with their
pods, bare and through every workload controller, on the real API server
(testenv/kubernetes): its quota, PodSecurity and the ValidatingAdmissionPolicies
computectl owns (credentials, RBAC and Services: test_kubernetes_tenant_access). The requests are made as the tenant's user
and as its ServiceAccount (impersonation by the cluster admin); kwok runs no containers,
but every refusal here is the API server's own.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from scheduler.kubernetes import KubeClient, KubernetesTenants
from scheduler.tenants import GpuQuota, TenantSpec
from tests.integration.conftest import KubeCluster

pytestmark = pytest.mark.integration

POOLS = {p: {"computectl.io/pool": p} for p in ("training", "inference")}
TOKEN_TYPE = "kubernetes.io/service-account-token"
IMAGE = "registry.k8s.io/pause:3.10"


class Tenant:
    """One applied tenant (8 GPUs of the training pool, user alice) and API clients
    acting as its identities."""

    def __init__(self, kube: KubeCluster, backend: KubernetesTenants) -> None:
        self.name = f"ke{uuid.uuid4().hex[:6]}"
        self.ns = f"tenant-{self.name}"
        self.spec = TenantSpec(
            self.name, users=("alice",), quotas=(GpuQuota("training", "H100-SXM", 8),)
        )
        self.kube, self.backend = kube, backend
        self._clients: list[Any] = []

    def client(self, user: str | None) -> Any:
        """An ApiClient of the admin kubeconfig, impersonating ``user`` (None: the admin).
        A ServiceAccount's groups come with its name."""
        k8s_config: Any = config  # the package has no type hints
        api_client = k8s_config.new_client_from_config(
            config_file=str(self.kube.kubeconfig), persist_config=False
        )
        if user:
            api_client.set_default_header("Impersonate-User", user)
        self._clients.append(api_client)
        return api_client

    @property
    def users(self) -> list[str]:
        return ["alice", f"system:serviceaccount:{self.ns}:tenant"]

    def close(self) -> None:
        for c in self._clients:
            c.close()


def created_or_refused(create: Callable[[], Any], delete: Callable[[], Any]) -> str:
    """The body of the API server's 403 for ``create``. In a namespace just made, admission
    policies see its labels a moment later: what got in meanwhile is deleted and the
    request repeated (for up to 10 s)."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            create()
        except ApiException as exc:
            if exc.status != 403:
                raise
            return str(exc.body)
        delete()
        if time.monotonic() > deadline:
            pytest.fail("admission never refused the request")
        time.sleep(0.2)


def token_secret(account: str = "tenant", name: str = "forever") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}},
        "type": TOKEN_TYPE,
    }


def applied_tenant(kube: KubeCluster, api: Any) -> Iterator[Tenant]:
    """A tenant applied with computectl's objects, whose guards are already in force
    (the fixture of this module and of test_kubernetes_tenant_access)."""
    driver = KubeClient(kube.kubeconfig)
    t = Tenant(kube, KubernetesTenants(driver, POOLS))
    t.backend.apply(t.spec)
    admin = client.CoreV1Api(t.client(None))
    # Both policies, through the namespace cache, before any test relies on them.
    created_or_refused(
        lambda: admin.create_namespaced_secret(t.ns, token_secret(name="probe")),
        lambda: admin.delete_namespaced_secret("probe", t.ns),
    )
    created_or_refused(
        lambda: admin.create_namespaced_pod(t.ns, pod_body({"nodeName": "kwok-gpu-001"})),
        lambda: admin.delete_namespaced_pod("p", t.ns, grace_period_seconds=0),
    )
    yield t
    t.close()
    driver.close()
    try:
        api.delete_collection_namespaced_pod(t.ns, grace_period_seconds=0)
        api.delete_namespace(t.ns, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def tenant(kube: KubeCluster, api: Any) -> Iterator[Tenant]:
    yield from applied_tenant(kube, api)


# -- pods, bare and through controllers ------------------------------------------------------------


def pod_body(spec: dict[str, Any], gpus: int = 0, name: str = "p") -> dict[str, Any]:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": IMAGE, "resources": resources}]} | spec,
    }


def in_form(form: str, pod: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``pod`` as the given kind would carry it: (kind, body)."""
    if form == "Pod":
        return form, pod
    template = {"metadata": {"labels": pod["metadata"]["labels"]}, "spec": pod["spec"]}
    selector = {"matchLabels": pod["metadata"]["labels"]}
    meta = {"name": pod["metadata"]["name"]}
    if form in ("Job", "CronJob"):
        template["spec"] = template["spec"] | {"restartPolicy": "Never"}
        job = {"template": template}
        if form == "Job":
            return form, {"metadata": meta, "spec": job}
        return form, {
            "metadata": meta,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job}},
        }
    spec: dict[str, Any] = {"replicas": 1, "selector": selector, "template": template}
    if form == "StatefulSet":
        spec["serviceName"] = meta["name"]
    return form, {"metadata": meta, "spec": spec}


def create(api_client: Any, ns: str, kind: str, body: dict[str, Any]) -> Any:
    if kind == "Pod":
        return client.CoreV1Api(api_client).create_namespaced_pod(ns, body)
    if kind in ("Job", "CronJob"):
        batch = client.BatchV1Api(api_client)
        method = batch.create_namespaced_job if kind == "Job" else batch.create_namespaced_cron_job
        return method(ns, body)
    apps = client.AppsV1Api(api_client)
    suffix = {
        "Deployment": "deployment",
        "StatefulSet": "stateful_set",
        "ReplicaSet": "replica_set",
    }
    return getattr(apps, f"create_namespaced_{suffix[kind]}")(ns, body)


TRAINING = {"nodeSelector": {"computectl.io/pool": "training"}}
# (what it tries, the pod spec, GPUs, the words of the refusal)
ESCAPES = [
    ("GPUs without a pool", {}, 1, "must set nodeSelector computectl.io/pool"),
    (
        "GPUs in a pool not bought",
        {"nodeSelector": {"computectl.io/pool": "inference"}},
        1,
        "must set nodeSelector computectl.io/pool",
    ),
    ("nodeName", TRAINING | {"nodeName": "kwok-gpu-007"}, 1, "may not set spec.nodeName"),
    ("nodeName, no GPUs", {"nodeName": "kwok-gpu-007"}, 0, "may not set spec.nodeName"),
    ("tolerate everything", {"tolerations": [{"operator": "Exists"}]}, 0, "may not tolerate"),
    (
        "tolerate the drain",
        TRAINING | {"tolerations": [{"key": "computectl.io/unhealthy", "operator": "Exists"}]},
        1,
        "may not tolerate",
    ),
    (
        "tolerate the cordon",
        {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
        0,
        "may not tolerate",
    ),
    ("preempt others", {"priorityClassName": "system-node-critical"}, 0, "system-* priority"),
]
FORMS = ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "Job", "CronJob"]


@pytest.mark.parametrize("form", FORMS)
def test_every_escape_is_refused_in_every_form(tenant: Tenant, form: str) -> None:
    for user in tenant.users:
        api_client = tenant.client(user)
        for i, (what, spec, gpus, words) in enumerate(ESCAPES):
            kind, body = in_form(form, pod_body(spec, gpus, name=f"x{i}"))
            with pytest.raises(ApiException) as err:
                create(api_client, tenant.ns, kind, body)
            assert err.value.status == 403, (what, err.value.body)
            assert "computectl: " in str(err.value.body) and words in str(err.value.body), what
        # The same workload, pinned to the tenant's pool, is let in (a toleration of
        # another taint too).
        ok = TRAINING | {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
        kind, body = in_form(form, pod_body(ok, 1, name=f"ok-{user[-6:].replace(':', '')}"))
        create(api_client, tenant.ns, kind, body)


def test_a_workload_template_changed_into_an_escape_is_refused_and_scaling_is_not_checked(
    tenant: Tenant,
) -> None:
    apps = client.AppsV1Api(tenant.client("alice"))
    _, body = in_form("Deployment", pod_body(TRAINING, 1, name="d"))
    apps.create_namespaced_deployment(tenant.ns, body)
    moved = {"spec": {"template": {"spec": {"nodeSelector": {"computectl.io/pool": "inference"}}}}}
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("d", tenant.ns, moved)
    assert err.value.status == 403 and "must set nodeSelector" in str(err.value.body)
    apps.patch_namespaced_deployment("d", tenant.ns, {"spec": {"replicas": 0}})


def failed_create(api: Any, ns: str, owner: str) -> str:
    """The messages of the FailedCreate events of ``owner``'s controller in ``ns``."""
    events = api.list_namespaced_event(ns).items
    return " ".join(
        e.message or ""
        for e in events
        if e.reason == "FailedCreate" and (e.involved_object.name or "").startswith(owner)
    )


@pytest.mark.parametrize("form", ["Deployment", "StatefulSet", "Job"])
def test_quota_and_pod_security_hold_for_pods_controllers_create(
    tenant: Tenant, api: Any, form: str
) -> None:
    """Templates the pool guard lets in, whose pods quota or PodSecurity refuse: the
    controller creates none, and says why."""
    as_alice = tenant.client("alice")
    # 12 GPUs as limits only (the API server defaults requests to them): over the quota of 8.
    _, big = in_form(form, pod_body(TRAINING, 12, name="big"))
    created = create(as_alice, tenant.ns, form, big)
    assert created is not None
    host = copy.deepcopy(pod_body(TRAINING | {"hostNetwork": True}, 1, name="host"))
    _, host_body = in_form(form, host)
    create(as_alice, tenant.ns, form, host_body)
    priv = pod_body(TRAINING, 0, name="priv")
    priv["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    priv["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    create(as_alice, tenant.ns, form, in_form(form, priv)[1])

    def reasons() -> bool:
        return all(failed_create(api, tenant.ns, owner) for owner in ("big", "host", "priv"))

    tenant.kube.wait(f"the {form} controller to report its failures", reasons, 60)
    assert "exceeded quota" in failed_create(api, tenant.ns, "big")
    assert 'violates PodSecurity "baseline' in failed_create(api, tenant.ns, "host")
    assert "hostPath" in failed_create(api, tenant.ns, "priv")
    assert "privileged" in failed_create(api, tenant.ns, "priv")
    assert api.list_namespaced_pod(tenant.ns).items == []


def test_bare_pods_are_held_to_pod_security_and_the_quota(tenant: Tenant) -> None:
    core = client.CoreV1Api(tenant.client("alice"))
    for spec, words in [
        (TRAINING | {"hostNetwork": True}, "hostNetwork"),
        (TRAINING | {"hostPID": True}, "hostPID"),
        (TRAINING | {"volumes": [{"name": "r", "hostPath": {"path": "/"}}]}, "hostPath"),
    ]:
        with pytest.raises(ApiException) as err:
            core.create_namespaced_pod(tenant.ns, pod_body(spec, 1))
        assert err.value.status == 403 and words in str(err.value.body)
    privileged = pod_body(TRAINING, 1)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(tenant.ns, privileged)
    assert "privileged" in str(err.value.body)
    # GPUs as limits only count against the quota all the same; as requests only,
    # the API server refuses them itself.
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(tenant.ns, pod_body(TRAINING, 9))
    assert err.value.status == 403 and "exceeded quota" in str(err.value.body)
    requests_only = pod_body(TRAINING, 0)
    requests_only["spec"]["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": "1"}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(tenant.ns, requests_only)
    assert err.value.status == 422
