"""`computectl demo`'s people: two demo tenants (made in the simulated backend when there
are none) and a token for each role, so one command shows every view of the control plane.

The demo's earlier tokens are revoked each time it starts (a token is shown once: the ones
printed before cannot be printed again), and these live a week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from compute.auth.principal import Principal, Role
from compute.services import tokens
from compute.store import identities

if TYPE_CHECKING:
    from compute.runtime import Runtime

DEMO_ACTOR = Principal(subject="local:demo", role=Role.OPERATOR, name="computectl demo")
NAME_PREFIX = "demo "
LIFETIME = timedelta(days=7)
# Two tenants, so that one's people can be seen not to see the other's; named as two of
# the simulated cluster's (scheduler/simulated/cluster.py), so they hold its jobs.
DEMO_TENANTS: tuple[dict[str, Any], ...] = (
    {
        "name": "aurora-labs",
        "users": ["alice", "bob"],
        "quotas": [{"pool": "training", "gpus": 64}, {"pool": "inference", "gpus": 16}],
        "gpu_hours_budget": 50000,
    },
    {
        "name": "fjord-ai",
        "users": ["carol"],
        "quotas": [{"pool": "training", "gpus": 32}],
    },
)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: str
    tenant: str | None
    token: str


def ensure_tenants(rt: Runtime) -> list[str]:
    """The tenants the demo shows: those stored, or the demo's two, made now (those of
    its pools that this configuration has)."""
    from compute.tenants.spec import parse_tenant

    have = sorted(t.name for t in rt.store.tenants())
    if have:
        return have
    pools = {p.name for p in rt.settings.effective_pools}
    made = []
    for raw in DEMO_TENANTS:
        quotas = [q for q in raw["quotas"] if q["pool"] in pools]
        spec = parse_tenant({**raw, "quotas": quotas}, rt.settings.effective_pools, "demo tenant")
        rt.tenants.apply(spec, actor=DEMO_ACTOR.actor)
        made.append(spec.name)
    return made


def demo_logins(rt: Runtime) -> list[DemoLogin]:
    """Fresh tokens: operator, viewer, and a tenant-admin and a tenant-member of the first
    two tenants. Earlier demo tokens are revoked."""
    now, at = datetime.now(UTC), rt.clock.now()
    for old in identities.tokens(rt.store):
        if old.name.startswith(NAME_PREFIX) and old.revoked_at is None:
            tokens.revoke(rt.store, DEMO_ACTOR, old.id, now=now, at=at)
    wanted: list[tuple[str, str | None]] = [("operator", None), ("viewer", None)]
    for name in ensure_tenants(rt)[:2]:
        wanted += [("tenant-admin", name), ("tenant-member", name)]
    out = []
    for role, tenant in wanted:
        made = tokens.create(
            rt.store,
            DEMO_ACTOR,
            role=role,
            tenant=tenant,
            lifetime=LIFETIME,
            name=f"{NAME_PREFIX}{role}" + (f" {tenant}" if tenant else ""),
            now=now,
            at=at,
        )
        out.append(DemoLogin(role, tenant, made.plaintext))
    return out


def logins_text(logins: list[DemoLogin], url: str) -> str:
    lines = [f"  logins    paste a token at {url}login (shown once; each lives a week):"]
    for login in logins:
        who = f"{login.role} of {login.tenant}" if login.tenant else login.role
        lines.append(f"    {who:<32} {login.token}")
    lines.append("  API       curl -H 'Authorization: Bearer <token>' " + f"{url}api/v1/whoami")
    return "\n".join(lines)
