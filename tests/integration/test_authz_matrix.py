"""Every route x every role: the status each gets, from real requests on the simulated
backend. A route that is not in the table fails the test, so no route ships unclassified.

Each cell is one probe request. Reads name real things (gpu-001, tenant-a, training);
changes send a body or a target that is refused after the front door (422, 404), so an
allowed role shows that it got through without changing anything, and the others show
401 (no credential) or 403 (not theirs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.api.auth import FailureLimiter
from compute.auth.testing import bearer, token_for
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from compute.testing import make_runtime
from tests.integration import (
    authz_acceptance,
    authz_capacity,
    authz_energy,
    authz_floors,
    authz_job_impact,
    authz_lemons,
    authz_power,
    authz_sdc,
    authz_tenants_batch,
)

pytestmark = pytest.mark.integration

ROLES = ("anonymous", "viewer", "operator", "admin-a", "member-a", "admin-b", "node-x")

# (method, template): (path, request kwargs), then the status per role in ROLES' order.
V1 = "/api/v1"
BAD: dict[str, Any] = {"json": {}}
MATRIX: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    ("GET", f"{V1}/nodes"): (f"{V1}/nodes", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/nodes/{{name}}"): (
        f"{V1}/nodes/gpu-001",
        {},
        (401, 200, 200, 403, 403, 403, 200),  # node X reads its own record
    ),
    ("GET", f"{V1}/nodes/{{name}}/rma-report"): (
        f"{V1}/nodes/gpu-001/rma-report",
        {},
        (401, 200, 200, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/nodes/{{name}}/health"): (
        f"{V1}/nodes/gpu-001/health",
        {"json": []},
        (401, 403, 422, 403, 403, 403, 422),
    ),
    ("POST", f"{V1}/nodes/drain"): (f"{V1}/nodes/drain", BAD, (401, 403, 422, 403, 403, 403, 403)),
    ("POST", f"{V1}/nodes/resume"): (
        f"{V1}/nodes/resume",
        BAD,
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/nodes/{{name}}/drain"): (
        f"{V1}/nodes/gpu-001/drain",
        BAD,
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/nodes/{{name}}/resume"): (
        f"{V1}/nodes/gpu-001/resume",
        {"json": {"force": "x"}},
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/nodes/{{name}}/retire"): (
        f"{V1}/nodes/gpu-999/retire",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("GET", f"{V1}/events"): (f"{V1}/events", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/capacity"): (f"{V1}/capacity", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/racks"): (f"{V1}/racks", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("POST", f"{V1}/sweep"): (f"{V1}/sweep", {}, (401, 403, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/overview"): (f"{V1}/overview", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/tenants"): (f"{V1}/tenants", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/tenants/{{name}}"): (
        f"{V1}/tenants/tenant-a",
        {},
        (401, 200, 200, 200, 200, 403, 403),
    ),
    ("GET", f"{V1}/tenants/{{name}}/usage"): (
        f"{V1}/tenants/tenant-a/usage",
        {},
        (401, 200, 200, 200, 200, 403, 403),
    ),
    ("POST", f"{V1}/tenants/plan"): (
        f"{V1}/tenants/plan",
        BAD,
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("PUT", f"{V1}/tenants/{{name}}"): (
        f"{V1}/tenants/tenant-a",
        BAD,
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/tenants/{{name}}/suspend"): (
        f"{V1}/tenants/tenant-z/suspend",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/tenants/{{name}}/resume"): (
        f"{V1}/tenants/tenant-z/resume",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("DELETE", f"{V1}/tenants/{{name}}"): (
        f"{V1}/tenants/tenant-a?force=maybe",
        {},
        (401, 403, 422, 403, 403, 403, 403),
    ),
    # The simulated fleet has no Kubernetes pool: allowed roles get the refusal (409).
    ("POST", f"{V1}/tenants/{{name}}/kubeconfig"): (
        f"{V1}/tenants/tenant-a/kubeconfig",
        {},
        (401, 403, 409, 409, 409, 403, 403),
    ),
    ("GET", f"{V1}/pools"): (f"{V1}/pools", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/pools/{{name}}/report"): (
        f"{V1}/pools/training/report",
        {},
        (401, 200, 200, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/pools/{{name}}/observe"): (
        f"{V1}/pools/training/observe",
        {"json": {"check": 5}},
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/pools/{{name}}/enable"): (
        f"{V1}/pools/training/enable",
        {"json": {"check": 5}},
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("GET", f"{V1}/incidents"): (f"{V1}/incidents", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", f"{V1}/incidents/{{id}}"): (
        f"{V1}/incidents/999",
        {},
        (401, 404, 404, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/incidents/{{id}}/release"): (
        f"{V1}/incidents/999/release",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("GET", f"{V1}/whoami"): (f"{V1}/whoami", {}, (401, 200, 200, 200, 200, 200, 200)),
    ("GET", f"{V1}/tokens"): (f"{V1}/tokens", {}, (401, 403, 200, 200, 403, 200, 403)),
    ("POST", f"{V1}/tokens"): (f"{V1}/tokens", BAD, (401, 403, 422, 422, 403, 422, 403)),
    ("DELETE", f"{V1}/tokens/{{id}}"): (
        f"{V1}/tokens/999999",
        {},
        (401, 403, 404, 404, 403, 404, 403),
    ),
    ("GET", f"{V1}/audit"): (f"{V1}/audit", {}, (401, 200, 200, 200, 403, 200, 403)),
    # -- quota requests ---------------------------------------------------------------------
    ("GET", f"{V1}/tenants/{{tenant}}/quota-requests"): (
        f"{V1}/tenants/tenant-a/quota-requests",
        {},
        (401, 200, 200, 200, 200, 403, 403),
    ),
    ("POST", f"{V1}/tenants/{{tenant}}/quota-requests"): (
        f"{V1}/tenants/tenant-a/quota-requests",
        BAD,
        (401, 403, 422, 422, 403, 403, 403),
    ),
    ("GET", f"{V1}/quota-requests"): (
        f"{V1}/quota-requests",
        {},
        (401, 200, 200, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/quota-requests/{{id}}/approve"): (
        f"{V1}/quota-requests/999999/approve",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/quota-requests/{{id}}/decline"): (
        f"{V1}/quota-requests/999999/decline",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    # -- outside the OpenAPI document -------------------------------------------------------
    # A tenant's people are sent on to their portal.
    ("GET", "/"): ("/", {}, (303, 200, 200, 303, 303, 303, 403)),
    ("GET", "/login"): ("/login", {}, (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/login"): ("/login", {"data": {"token": ""}}, (401, 401, 401, 401, 401, 401, 401)),
    ("POST", "/logout"): ("/logout", {}, (303, 303, 303, 303, 303, 303, 303)),
    # Public; without [oidc] in the settings (as here) single sign-on is not there: 404.
    ("GET", "/login/oidc"): ("/login/oidc", {}, (404, 404, 404, 404, 404, 404, 404)),
    ("GET", "/oidc/callback"): (
        "/oidc/callback",
        {"params": {"code": "c", "state": "s"}},
        (404, 404, 404, 404, 404, 404, 404),
    ),
    ("GET", "/healthz"): ("/healthz", {}, (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/readyz"): ("/readyz", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", "/metrics"): ("/metrics", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("GET", "/openapi.json"): ("/openapi.json", {}, (401, 200, 200, 200, 200, 200, 403)),
    ("GET", "/docs"): ("/docs", {}, (303, 200, 200, 200, 200, 200, 403)),
    ("GET", "/docs/assets/{name}"): (
        "/docs/assets/swagger-ui.css",
        {},
        (401, 200, 200, 200, 200, 200, 403),
    ),
    # -- the portal: pages send a browser without a login to /login (303) -------------------
    ("GET", "/portal"): ("/portal", {}, (303, 303, 303, 303, 303, 303, 403)),
    ("GET", "/portal/t/{tenant}"): ("/portal/t/tenant-a", {}, (303, 200, 200, 200, 200, 403, 403)),
    ("GET", "/portal/t/{tenant}/requests"): (
        "/portal/t/tenant-a/requests",
        {},
        (303, 200, 200, 200, 200, 403, 403),
    ),
    ("POST", "/portal/t/{tenant}/requests"): (
        "/portal/t/tenant-a/requests",
        {"data": {"gpus": "x"}},
        (401, 403, 422, 422, 403, 403, 403),
    ),
    # The simulated fleet has no Kubernetes pool: allowed roles get the refusal (409).
    ("POST", "/portal/t/{tenant}/kubeconfig"): (
        "/portal/t/tenant-a/kubeconfig",
        {},
        (401, 403, 409, 409, 409, 403, 403),
    ),
    ("GET", "/portal/t/{tenant}/tokens"): (
        "/portal/t/tenant-a/tokens",
        {},
        (303, 403, 200, 200, 403, 403, 403),
    ),
    ("POST", "/portal/t/{tenant}/tokens"): (
        "/portal/t/tenant-a/tokens",
        {"data": {"role": "operator"}},
        (401, 403, 422, 422, 403, 403, 403),
    ),
    ("POST", "/portal/t/{tenant}/tokens/{id}/revoke"): (
        "/portal/t/tenant-a/tokens/999999/revoke",
        {},
        (401, 403, 404, 404, 403, 403, 403),
    ),
    ("GET", "/portal/ops"): ("/portal/ops", {}, (303, 200, 200, 403, 403, 403, 403)),
    ("GET", "/portal/ops/tenants"): (
        "/portal/ops/tenants",
        {},
        (303, 200, 200, 403, 403, 403, 403),
    ),
    ("GET", "/portal/ops/drains"): ("/portal/ops/drains", {}, (303, 200, 200, 403, 403, 403, 403)),
    ("GET", "/portal/ops/capacity"): (
        "/portal/ops/capacity",
        {},
        (303, 200, 200, 403, 403, 403, 403),
    ),
    ("GET", "/portal/ops/audit"): ("/portal/ops/audit", {}, (303, 200, 200, 403, 403, 403, 403)),
    ("POST", "/portal/ops/requests/{id}/approve"): (
        "/portal/ops/requests/999999/approve",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", "/portal/ops/requests/{id}/decline"): (
        "/portal/ops/requests/999999/decline",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
}
for _part in (
    authz_power, authz_capacity, authz_energy, authz_tenants_batch, authz_floors,
    authz_job_impact, authz_sdc, authz_acceptance, authz_lemons,
):  # fmt: skip
    assert not MATRIX.keys() & _part.ROWS.keys(), "a route with two rows"
    MATRIX.update(_part.ROWS)


def add_tenants(rt: Runtime, *names: str) -> None:
    for name in names:
        spec = parse_tenant({"name": name, "users": ["alice"]}, rt.settings.effective_pools)
        rt.tenants.apply(spec, actor="test")


def identities(rt: Runtime) -> dict[str, dict[str, str]]:
    tokens = {
        "viewer": token_for(rt.store, "viewer"),
        "operator": token_for(rt.store, "operator"),
        "admin-a": token_for(rt.store, "tenant-admin", tenant="tenant-a"),
        "member-a": token_for(rt.store, "tenant-member", tenant="tenant-a"),
        "admin-b": token_for(rt.store, "tenant-admin", tenant="tenant-b"),
        "node-x": token_for(rt.store, "node", node="gpu-001"),
    }
    return {"anonymous": {}, **{role: bearer(t) for role, t in tokens.items()}}


def all_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every route of the app, those of included routers too."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        inner = getattr(r, "original_router", None) or getattr(r, "routes", None)
        if inner is not None and not isinstance(r, APIRoute):
            yield from all_routes(list(getattr(inner, "routes", inner)))


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    rt = make_runtime(tmp_path_factory.mktemp("matrix"))
    rt.sweep()
    add_tenants(rt, "tenant-a", "tenant-b")
    # Dozens of refused anonymous writes in a row: not a brute force here.
    app = create_app(rt, limiter=FailureLimiter(limit=100_000))
    with TestClient(app) as client:
        yield client, identities(rt)
    rt.close()


def test_every_route_is_in_the_table(served: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = served
    app = client.app
    assert hasattr(app, "openapi") and hasattr(app, "routes")
    documented = {
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
    }
    served_routes = {
        (m, r.path_format) for r in all_routes(list(app.routes)) for m in r.methods if m != "HEAD"
    }
    assert documented <= served_routes
    missing = served_routes - MATRIX.keys()
    assert not missing, f"routes without a row in the authorization matrix: {sorted(missing)}"
    gone = MATRIX.keys() - served_routes
    assert not gone, f"rows for routes that do not exist: {sorted(gone)}"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_gets_the_expected_status(
    served: tuple[TestClient, dict[str, dict[str, str]]], route: tuple[str, str]
) -> None:
    client, who = served
    path, kwargs, expected = MATRIX[route]
    got = {}
    for role in ROLES:
        client.cookies.clear()
        r = client.request(route[0], path, headers=who[role], follow_redirects=False, **kwargs)
        got[role] = r.status_code
        assert r.status_code < 500, (role, r.text)
    assert got == dict(zip(ROLES, expected, strict=True))
