"""A principal: the identity a request acts as, with its role and what it is bound to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    VIEWER = "viewer"
    TENANT_ADMIN = "tenant-admin"
    TENANT_MEMBER = "tenant-member"
    NODE = "node"


TENANT_ROLES = frozenset({Role.TENANT_ADMIN, Role.TENANT_MEMBER})


@dataclass(frozen=True, slots=True)
class Principal:
    """``subject`` names the credential ("token:12", "oidc:alice@example.com",
    "sa:computectl/node-agent", "local:root"); ``name`` is for people to read; ``source``
    is where the request came from (a client address, or "local")."""

    subject: str
    role: Role
    tenant: str | None = None
    node: str | None = None
    name: str = ""
    source: str = "local"

    def __post_init__(self) -> None:
        # A tenant role without its tenant, or a node role without its node, would be
        # bound to nothing: refused here so no rule ever has to ask.
        if (self.role in TENANT_ROLES) != (self.tenant is not None):
            raise ValueError(
                f"role {self.role} {'needs' if self.tenant is None else 'takes no'} tenant"
            )
        if (self.role is Role.NODE) != (self.node is not None):
            raise ValueError(
                f"role {self.role} {'needs' if self.node is None else 'takes no'} node"
            )

    @property
    def actor(self) -> str:
        """How the audit trail names it: "token:12 (alice-laptop)"."""
        return f"{self.subject} ({self.name})" if self.name else self.subject


class Actor(str):
    """The audit actor of a principal's request ("token:12 (alice-laptop)"). A str, so the
    services record it as they record any actor; it also carries where the request came
    from and the principal's tenant, which the audit row keeps in columns of their own
    (compute/store/models.py, AuditRow)."""

    source: str
    tenant: str | None

    def __new__(cls, principal: Principal) -> Actor:
        actor = super().__new__(cls, principal.actor)
        actor.source = principal.source
        actor.tenant = principal.tenant
        return actor


def local_principal(user: str) -> Principal:
    """Whoever can read the data directory already owns the database: an operator."""
    return Principal(subject=f"local:{user}", role=Role.OPERATOR, name=user, source="local")
