"""A Kubernetes tenant's users trying to get around what computectl enforces with its
other objects, on the real API server (testenv/kubernetes): ServiceAccount token Secrets,
RBAC (the API server's authorizer), Services, and the namespace's pod-security labels.
As the tenant's user and its ServiceAccount (impersonation by the cluster admin).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scheduler.kubernetes.tenant_objects import OBJECTS_GUARD, POD_SECURITY
from scheduler.tenants import ChangeKind
from tests.integration.conftest import KubeCluster
from tests.integration.test_kubernetes_tenant_escapes import (
    TOKEN_TYPE,
    Tenant,
    applied_tenant,
    token_secret,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def tenant(kube: KubeCluster, api: Any) -> Iterator[Tenant]:
    yield from applied_tenant(kube, api)


# -- credentials ---------------------------------------------------------------------------------


def test_a_token_secret_is_refused_and_ordinary_secrets_still_work(tenant: Tenant) -> None:
    for user in tenant.users:
        core = client.CoreV1Api(tenant.client(user))
        for account in ("tenant", "default"):
            with pytest.raises(ApiException) as err:
                core.create_namespaced_secret(tenant.ns, token_secret(account))
            assert err.value.status == 403
            assert f"computectl: Secrets of type {TOKEN_TYPE} are refused" in str(err.value.body)
            assert "computectl tenants kubeconfig" in str(err.value.body)
        # Opaque, and the typed ones a tenant needs (registry credentials, TLS).
        for i, (kind, data) in enumerate(
            [
                ("Opaque", {"k": "dg=="}),
                ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "e30="}),
                ("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}),
            ]
        ):
            name = f"ok-{i}-{uuid.uuid4().hex[:4]}"
            body = {"metadata": {"name": name}, "type": kind, "data": data}
            core.create_namespaced_secret(tenant.ns, body)
            core.patch_namespaced_secret(name, tenant.ns, {"data": {"more": "eA=="}})
            core.delete_namespaced_secret(name, tenant.ns)


def test_a_token_secret_made_before_the_policy_is_deleted_by_apply(
    tenant: Tenant, api: Any
) -> None:
    adm = client.AdmissionregistrationV1Api(api.api_client)
    adm.delete_validating_admission_policy_binding(OBJECTS_GUARD)  # as before the fix
    made = created_or_refused_inverse(
        lambda: api.create_namespaced_secret(tenant.ns, token_secret())
    )
    assert made
    # The token controller fills it in: a token that never expires.
    tenant.kube.wait(
        "the token controller",
        lambda: bool((api.read_namespaced_secret("forever", tenant.ns).data or {}).get("token")),
    )
    planned = {c.target: c for c in tenant.backend.plan(tenant.spec)}
    gone = planned[f"secret {tenant.ns}/forever"]
    assert gone.kind is ChangeKind.DELETE and "never expires" in gone.before
    assert f"validatingadmissionpolicybinding {OBJECTS_GUARD}" in planned
    tenant.backend.apply(tenant.spec)
    with pytest.raises(ApiException) as err:
        api.read_namespaced_secret("forever", tenant.ns)
    assert err.value.status == 404
    assert tenant.backend.plan(tenant.spec) == []


def created_or_refused_inverse(create: Callable[[], Any]) -> bool:
    """``create`` until it succeeds: a policy binding just deleted is still enforced for
    a moment (up to 10 s)."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            create()
            return True
        except ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_rbac_gives_no_way_to_credentials_or_around_the_scheduler(tenant: Tenant, api: Any) -> None:
    """The API server's authorizer, asked about every identity of the tenant."""
    authz: Any = client.AuthorizationV1Api(api.api_client)
    rbac = "rbac.authorization.k8s.io"
    denied = [
        ("create", "", "serviceaccounts", ""),
        ("create", "", "serviceaccounts", "token"),
        ("create", rbac, "rolebindings", ""),
        ("create", rbac, "roles", ""),
        ("bind", rbac, "roles", ""),
        ("escalate", rbac, "roles", ""),
        ("bind", rbac, "clusterroles", ""),
        ("impersonate", "", "serviceaccounts", ""),
        ("impersonate", "", "users", ""),
        ("create", "", "pods", "binding"),
        ("patch", "", "pods", "ephemeralcontainers"),
        ("update", "", "pods", "ephemeralcontainers"),
        ("patch", "", "pods", "status"),
        ("create", "", "endpoints", ""),
        ("create", "discovery.k8s.io", "endpointslices", ""),
        ("create", "", "persistentvolumes", ""),
        ("create", "apps", "daemonsets", ""),
        ("create", "scheduling.k8s.io", "priorityclasses", ""),
    ]
    for user in tenant.users:
        for verb, group, resource, sub in denied:
            attrs = {"verb": verb, "group": group, "resource": resource, "namespace": tenant.ns}
            if sub:
                attrs["subresource"] = sub
            review = authz.create_subject_access_review(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {"user": user, "resourceAttributes": attrs}
                    | ({"groups": ["system:authenticated"]} if user == "alice" else {}),
                }
            )
            assert not review.status.allowed, (user, verb, resource, sub)
    # And as the request itself: a binding of the admin role to the tenant's account.
    as_alice = client.RbacAuthorizationV1Api(tenant.client("alice"))
    with pytest.raises(ApiException) as err:
        as_alice.create_namespaced_role_binding(
            tenant.ns,
            {
                "metadata": {"name": "mine"},
                "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"kind": "User", "name": "alice", "apiGroup": rbac}],
            },
        )
    assert err.value.status == 403


def test_pod_security_labels_are_computectls_and_drift_is_taken_back(
    tenant: Tenant, api: Any
) -> None:
    labels = api.read_namespace(tenant.ns).metadata.labels
    assert {k: labels[k] for k in POD_SECURITY} == POD_SECURITY
    api.patch_namespace(
        tenant.ns,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
    )
    [change] = tenant.backend.plan(tenant.spec)
    assert change.target == f"namespace {tenant.ns}" and "enforce=privileged" in change.before
    tenant.backend.apply(tenant.spec)
    labels = api.read_namespace(tenant.ns).metadata.labels
    assert {k: labels[k] for k in POD_SECURITY} == POD_SECURITY


# -- services --------------------------------------------------------------------------------------


def test_services_stay_inside_the_cluster(tenant: Tenant) -> None:
    core = client.CoreV1Api(tenant.client("alice"))
    port = [{"port": 80, "protocol": "TCP"}]
    for i, (spec, words) in enumerate(
        [
            ({"type": "NodePort"}, "NodePort and LoadBalancer are refused"),
            ({"type": "LoadBalancer"}, "NodePort and LoadBalancer are refused"),
            ({"externalIPs": ["8.8.8.8"]}, "may not set externalIPs"),
        ]
    ):
        body = {"metadata": {"name": f"s{i}"}, "spec": {"ports": port, "selector": {"a": "b"}}}
        body["spec"] |= spec
        with pytest.raises(ApiException) as err:
            core.create_namespaced_service(tenant.ns, body)
        assert err.value.status == 403 and words in str(err.value.body)
    core.create_namespaced_service(
        tenant.ns, {"metadata": {"name": "ok"}, "spec": {"ports": port, "selector": {"a": "b"}}}
    )
    core.create_namespaced_service(
        tenant.ns,
        {"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}},
    )
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_service("ok", tenant.ns, {"spec": {"type": "NodePort"}})
    assert err.value.status == 403
