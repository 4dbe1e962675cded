"""THE authorization table: every route's rule, in one place, deny by default.

A route is named as FastAPI stores it: the method and the path template
("/api/v1/nodes/{name}/health"). A rule names the roles allowed and, for the roles bound to
a tenant or a node, which path parameter must name theirs. A route that is not in the table
is refused to everyone (403), so a new route cannot ship unclassified (the matrix test in
tests/integration/test_authz_matrix.py fails first).

Within a route, what a tenant-admin may do with tokens and which audit entries it sees are
decided here too (``may_issue``, ``may_manage``, ``audit_tenant``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from compute.auth.principal import TENANT_ROLES, Principal, Role
from compute.errors import ComputeError


class Unauthenticated(ComputeError):
    """No credential, or one that is not valid (unknown, expired, revoked): 401."""

    http_status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="computectl"'}


class Forbidden(ComputeError):
    """The principal is known and may not do this: 403. Nothing changed."""

    http_status = 403
    code = "forbidden"


class TooManyFailures(ComputeError):
    """Too many failed logins from one source: 429 until the window passes."""

    http_status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(int(retry_after), 1))}


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Scope(StrEnum):
    ANY = "any"  # every principal of an allowed role
    TENANT = "tenant"  # tenant roles: only their tenant, named by the path parameter
    NODE = "node"  # the node role: only its node, named by the path parameter


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    scope: Scope = Scope.ANY
    param: str = "name"
    public: bool = False  # anyone, without a credential
    page: bool = False  # a page: a browser without a login is sent to /login
    record: bool = False  # the front door audits a success (the service does not)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int  # 200 allowed, 401 who are you, 403 not you
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 200


ALLOW = Verdict(200)
ALL_ROLES = frozenset(Role)
PEOPLE = ALL_ROLES - {Role.NODE}
OPS = frozenset({Role.OPERATOR})
READERS = frozenset({Role.OPERATOR, Role.VIEWER})
TENANT_READERS = READERS | TENANT_ROLES
TOKEN_KEEPERS = frozenset({Role.OPERATOR, Role.TENANT_ADMIN})
_PUBLIC = Rule(frozenset(), public=True)


def _table(metrics_public: bool) -> dict[tuple[str, str], Rule]:
    ops, read = Rule(OPS), Rule(READERS)
    v1 = "/api/v1"
    return {
        # -- outside the API: the process, the page, logging in ----------------------------
        ("GET", "/healthz"): _PUBLIC,
        ("GET", "/readyz"): read,
        ("GET", "/metrics"): _PUBLIC if metrics_public else read,
        ("GET", "/"): Rule(PEOPLE, page=True),
        ("GET", "/login"): _PUBLIC,
        ("POST", "/login"): _PUBLIC,
        ("POST", "/logout"): _PUBLIC,
        ("GET", "/login/oidc"): _PUBLIC,
        ("GET", "/oidc/callback"): _PUBLIC,
        ("GET", "/openapi.json"): Rule(PEOPLE),
        ("GET", "/docs"): Rule(PEOPLE, page=True),
        ("GET", "/docs/assets/{name}"): Rule(PEOPLE),
        # -- who am I ----------------------------------------------------------------------
        ("GET", f"{v1}/whoami"): Rule(ALL_ROLES),
        # -- the fleet: operators act, viewers read; a node reports for itself only --------
        ("GET", f"{v1}/nodes"): read,
        # A node reads its own record: the GPUs the inventory expects it to have.
        ("GET", f"{v1}/nodes/{{name}}"): Rule(READERS | {Role.NODE}, Scope.NODE),
        ("GET", f"{v1}/nodes/{{name}}/rma-report"): read,
        ("POST", f"{v1}/nodes/{{name}}/health"): Rule(OPS | {Role.NODE}, Scope.NODE),
        ("POST", f"{v1}/nodes/drain"): ops,
        ("POST", f"{v1}/nodes/resume"): ops,
        ("POST", f"{v1}/nodes/{{name}}/drain"): ops,
        ("POST", f"{v1}/nodes/{{name}}/resume"): ops,
        ("POST", f"{v1}/nodes/{{name}}/retire"): ops,
        ("GET", f"{v1}/events"): read,
        ("GET", f"{v1}/capacity"): read,
        ("GET", f"{v1}/racks"): read,
        ("POST", f"{v1}/sweep"): Rule(OPS, record=True),
        ("GET", f"{v1}/overview"): read,
        # -- tenants: a tenant's people read their own -------------------------------------
        ("GET", f"{v1}/tenants"): read,
        ("GET", f"{v1}/tenants/{{name}}"): Rule(TENANT_READERS, Scope.TENANT),
        ("GET", f"{v1}/tenants/{{name}}/usage"): Rule(TENANT_READERS, Scope.TENANT),
        ("POST", f"{v1}/tenants/plan"): ops,
        ("PUT", f"{v1}/tenants/{{name}}"): ops,
        ("POST", f"{v1}/tenants/{{name}}/suspend"): ops,
        ("POST", f"{v1}/tenants/{{name}}/resume"): ops,
        ("DELETE", f"{v1}/tenants/{{name}}"): ops,
        # Mints a credential: the tenant's people and operators, never a viewer.
        ("POST", f"{v1}/tenants/{{name}}/kubeconfig"): Rule(
            OPS | TENANT_ROLES, Scope.TENANT, record=True
        ),
        # -- pools and the brake -----------------------------------------------------------
        ("GET", f"{v1}/pools"): read,
        ("GET", f"{v1}/pools/{{name}}/report"): read,
        ("POST", f"{v1}/pools/{{name}}/observe"): ops,
        ("POST", f"{v1}/pools/{{name}}/enable"): ops,
        ("GET", f"{v1}/incidents"): read,
        ("GET", f"{v1}/incidents/{{id}}"): read,
        ("POST", f"{v1}/incidents/{{id}}/release"): ops,
        # -- tokens and the audit trail: a tenant-admin's own (narrowed below) -------------
        ("GET", f"{v1}/tokens"): Rule(TOKEN_KEEPERS),
        ("POST", f"{v1}/tokens"): Rule(TOKEN_KEEPERS),
        ("DELETE", f"{v1}/tokens/{{id}}"): Rule(TOKEN_KEEPERS),
        ("GET", f"{v1}/audit"): Rule(READERS | {Role.TENANT_ADMIN}),
        # -- quota requests: a tenant-admin asks for its own tenant, operators decide ------
        ("GET", f"{v1}/tenants/{{tenant}}/quota-requests"): Rule(
            TENANT_READERS, Scope.TENANT, "tenant"
        ),
        ("POST", f"{v1}/tenants/{{tenant}}/quota-requests"): Rule(
            TOKEN_KEEPERS, Scope.TENANT, "tenant"
        ),
        ("GET", f"{v1}/quota-requests"): read,
        ("POST", f"{v1}/quota-requests/{{id}}/approve"): ops,
        ("POST", f"{v1}/quota-requests/{{id}}/decline"): ops,
        **_portal(),
        **_features(v1),
    }


def _features(v1: str) -> dict[tuple[str, str], Rule]:
    """Rows kept beside each feature's routes (imported here, not at the top: they import
    this module's Rule)."""
    from compute.auth import (
        rules_acceptance,
        rules_capacity,
        rules_energy,
        rules_floors,
        rules_job_impact,
        rules_lemons,
        rules_power,
        rules_sdc,
        rules_tenants_batch,
    )

    parts = (
        rules_power, rules_capacity, rules_energy, rules_tenants_batch, rules_floors,
        rules_job_impact, rules_sdc, rules_acceptance, rules_lemons,
    )  # fmt: skip
    table: dict[tuple[str, str], Rule] = {}
    for part in parts:
        rows = part.rules(v1)
        clash = table.keys() & rows.keys()
        assert not clash, f"routes with two rules: {sorted(clash)}"
        table.update(rows)
    return table


def _portal() -> dict[tuple[str, str], Rule]:
    """The portal's pages (compute/portal/): a tenant's under /portal/t/{tenant}, the
    operators' under /portal/ops."""
    t = "/portal/t/{tenant}"
    mine = Rule(TENANT_READERS, Scope.TENANT, "tenant", page=True)
    admin = Rule(TOKEN_KEEPERS, Scope.TENANT, "tenant")
    ops_page = Rule(READERS, page=True)
    return {
        ("GET", "/portal"): Rule(PEOPLE, page=True),
        ("GET", t): mine,
        ("GET", f"{t}/requests"): mine,
        ("POST", f"{t}/requests"): admin,
        # Mints a credential: the front door audits each one issued.
        ("POST", f"{t}/kubeconfig"): Rule(OPS | TENANT_ROLES, Scope.TENANT, "tenant", record=True),
        ("GET", f"{t}/tokens"): Rule(TOKEN_KEEPERS, Scope.TENANT, "tenant", page=True),
        ("POST", f"{t}/tokens"): admin,
        ("POST", f"{t}/tokens/{{id}}/revoke"): admin,
        ("GET", "/portal/ops"): ops_page,
        ("GET", "/portal/ops/tenants"): ops_page,
        ("GET", "/portal/ops/drains"): ops_page,
        ("GET", "/portal/ops/capacity"): ops_page,
        ("GET", "/portal/ops/audit"): ops_page,
        ("POST", "/portal/ops/requests/{id}/approve"): Rule(OPS),
        ("POST", "/portal/ops/requests/{id}/decline"): Rule(OPS),
    }


class Policy:
    """The table, built once at start-up from the settings that change it."""

    def __init__(self, *, metrics_public: bool = False) -> None:
        self.rules: Mapping[tuple[str, str], Rule] = MappingProxyType(_table(metrics_public))

    def rule(self, method: str, template: str) -> Rule | None:
        # HEAD is GET without the body: the same rule.
        return self.rules.get(("GET" if method == "HEAD" else method, template))

    def authorize(
        self,
        principal: Principal | None,
        method: str,
        template: str,
        params: Mapping[str, str],
    ) -> Verdict:
        rule = self.rule(method, template)
        if rule is not None and rule.public:
            return ALLOW
        if principal is None:
            return Verdict(401, "this needs a credential: 'Authorization: Bearer <token>'")
        if rule is None:
            return Verdict(403, f"no rule lets anyone {method} {template}")
        if principal.role not in rule.roles:
            return Verdict(403, f"role {principal.role} may not {method} {template}")
        bound = _bound_to(principal, rule)
        if bound is not None and params.get(rule.param) != bound:
            return Verdict(403, f"{principal.role} {bound} may act only on its own {rule.scope}")
        return ALLOW


def _bound_to(principal: Principal, rule: Rule) -> str | None:
    """The value the rule's path parameter must have for this principal (None: any)."""
    if rule.scope is Scope.TENANT and principal.role in TENANT_ROLES:
        return principal.tenant
    if rule.scope is Scope.NODE and principal.role is Role.NODE:
        return principal.node
    return None


def may_issue(principal: Principal, role: Role, tenant: str | None) -> bool:
    """Operators issue any token; a tenant-admin only its own tenant's people's."""
    if principal.role is Role.OPERATOR:
        return True
    return (
        principal.role is Role.TENANT_ADMIN and role in TENANT_ROLES and tenant == principal.tenant
    )


def may_manage(principal: Principal, token_tenant: str | None) -> bool:
    """Whether ``principal`` may see and revoke a token of ``token_tenant``."""
    if principal.role is Role.OPERATOR:
        return True
    return principal.role is Role.TENANT_ADMIN and token_tenant == principal.tenant


def audit_tenant(principal: Principal) -> tuple[bool, str | None]:
    """Whether the principal reads the audit trail, and the tenant its reads are limited
    to (None: all of it)."""
    if principal.role in READERS:
        return True, None
    if principal.role is Role.TENANT_ADMIN:
        return True, principal.tenant
    return False, None
