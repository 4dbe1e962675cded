"""The authorization table: deny by default, roles, and tenant and node binding."""

from __future__ import annotations

import pytest

from compute.auth.policy import Policy, audit_tenant, may_issue, may_manage
from compute.auth.principal import Principal, Role

OP = Principal("token:1", Role.OPERATOR)
VIEWER = Principal("token:2", Role.VIEWER)
ADMIN_A = Principal("token:3", Role.TENANT_ADMIN, tenant="tenant-a")
MEMBER_A = Principal("token:4", Role.TENANT_MEMBER, tenant="tenant-a")
NODE_X = Principal("token:5", Role.NODE, node="gpu-001")
POLICY = Policy()


def status(p: Principal | None, method: str, template: str, **params: str) -> int:
    return POLICY.authorize(p, method, template, params).status


def test_unknown_routes_are_denied_to_everyone_known() -> None:
    assert status(OP, "GET", "/api/v1/secret") == 403
    assert status(OP, "PATCH", "/api/v1/nodes") == 403
    assert status(None, "GET", "/api/v1/secret") == 401


def test_anonymous_reaches_only_public_routes() -> None:
    assert status(None, "GET", "/healthz") == 200
    assert status(None, "GET", "/metrics") == 401
    assert Policy(metrics_public=True).authorize(None, "GET", "/metrics", {}).allowed
    assert status(None, "GET", "/api/v1/nodes") == 401


def test_viewer_reads_and_never_writes() -> None:
    writes = [k for k in POLICY.rules if k[0] != "GET" and not POLICY.rules[k].public]
    assert writes
    for method, template in writes:
        assert status(VIEWER, method, template, name="x", id="1") == 403, template
    assert status(VIEWER, "GET", "/api/v1/nodes") == 200
    assert status(VIEWER, "GET", "/api/v1/audit") == 200


def test_tenant_roles_see_their_tenant_only() -> None:
    t = "/api/v1/tenants/{name}"
    assert status(ADMIN_A, "GET", t, name="tenant-a") == 200
    assert status(MEMBER_A, "GET", t, name="tenant-a") == 200
    assert status(ADMIN_A, "GET", t, name="tenant-b") == 403
    assert status(MEMBER_A, "GET", "/api/v1/tenants") == 403
    assert status(ADMIN_A, "GET", "/api/v1/nodes") == 403
    assert status(ADMIN_A, "PUT", t, name="tenant-a") == 403


def test_node_reports_for_itself_only() -> None:
    t = "/api/v1/nodes/{name}/health"
    assert status(NODE_X, "POST", t, name="gpu-001") == 200
    assert status(NODE_X, "POST", t, name="gpu-002") == 403
    # It reads its own node (the GPUs it should have) and no other.
    assert status(NODE_X, "GET", "/api/v1/nodes/{name}", name="gpu-001") == 200
    assert status(NODE_X, "GET", "/api/v1/nodes/{name}", name="gpu-002") == 403
    assert status(OP, "POST", t, name="gpu-002") == 200


def test_head_is_get() -> None:
    assert status(VIEWER, "HEAD", "/api/v1/nodes") == 200


def test_who_issues_and_manages_which_tokens() -> None:
    assert may_issue(OP, Role.OPERATOR, None)
    assert may_issue(ADMIN_A, Role.TENANT_MEMBER, "tenant-a")
    assert may_issue(ADMIN_A, Role.TENANT_ADMIN, "tenant-a")
    assert not may_issue(ADMIN_A, Role.TENANT_MEMBER, "tenant-b")
    assert not may_issue(ADMIN_A, Role.OPERATOR, None)
    assert not may_issue(MEMBER_A, Role.TENANT_MEMBER, "tenant-a")
    assert not may_issue(VIEWER, Role.VIEWER, None)
    assert may_manage(OP, "tenant-b") and may_manage(ADMIN_A, "tenant-a")
    assert not may_manage(ADMIN_A, "tenant-b") and not may_manage(ADMIN_A, None)
    assert audit_tenant(VIEWER) == (True, None)
    assert audit_tenant(ADMIN_A) == (True, "tenant-a")
    assert audit_tenant(MEMBER_A)[0] is False


@pytest.mark.parametrize(
    ("role", "tenant", "node"),
    [
        (Role.TENANT_ADMIN, None, None),
        (Role.NODE, None, None),
        (Role.OPERATOR, "tenant-a", None),
        (Role.VIEWER, None, "gpu-001"),
    ],
)
def test_a_principal_is_bound_to_what_its_role_needs(
    role: Role, tenant: str | None, node: str | None
) -> None:
    with pytest.raises(ValueError, match=r"tenant|node"):
        Principal("x", role, tenant=tenant, node=node)
