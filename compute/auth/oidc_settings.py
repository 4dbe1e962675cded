"""Table [oidc]: single sign-on for people through an OpenID Connect provider.

    [oidc]
    issuer = "https://login.example.com/dex"
    client_id = "computectl"
    client_secret_file = "/etc/computectl/oidc-client-secret"
    redirect_uri = "https://computectl.example.com/oidc/callback"

    [[oidc.groups]]
    group = "gpu-operators"
    role = "operator"

    [[oidc.groups]]
    group = "team-a-admins"
    role = "tenant-admin"
    tenant = "team-a"

A person is let in only through a group listed here: the first entry, in the order of the
file, whose group the provider's token names decides the role (and tenant). Someone the
provider knows but who is in none of these groups gets no access at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from compute.auth.principal import TENANT_ROLES, Role
from compute.config_base import Section
from compute.errors import ConfigError
from compute.validation import TENANT_NAME, TENANT_NAME_HINT

# RFC 6749 3.3: a scope token is printable ASCII without space, '"' or '\'.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def check_url(value: str, what: str) -> str:
    """An absolute http(s) URL; plain http only to this machine (a test provider), since
    codes, tokens and the client secret travel over it."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError(f"{what} must use https (plain http only to 127.0.0.1 or localhost)")
    if parts.fragment or parts.username or parts.password:
        raise ValueError(f"{what} must not hold a fragment or credentials")
    return value


class OidcGroupMapping(Section):
    group: str = Field(
        min_length=1, max_length=256, description="A group as the provider's groups claim names it."
    )
    role: Role = Field(
        description="The role its members get: operator, viewer, tenant-admin or tenant-member."
    )
    tenant: str | None = Field(None, description="The tenant, for the tenant roles (only).")

    @field_validator("tenant")
    @classmethod
    def _tenant_name(cls, v: str | None) -> str | None:
        if v is not None and TENANT_NAME.fullmatch(v) is None:
            raise ValueError(f"tenant {v!a} is not valid: {TENANT_NAME_HINT}")
        return v

    @model_validator(mode="after")
    def _bound(self) -> OidcGroupMapping:
        if self.role is Role.NODE:
            raise ValueError("role 'node' is for machines (node tokens), not people")
        if self.role in TENANT_ROLES and self.tenant is None:
            raise ValueError(f"role '{self.role}' needs a tenant")
        if self.role not in TENANT_ROLES and self.tenant is not None:
            raise ValueError(f"role '{self.role}' takes no tenant")
        return self


class OidcSettings(Section):
    issuer: str = Field(
        max_length=2048,
        description="The provider's issuer URL, exactly as its discovery document states it "
        "(discovery is read from <issuer>/.well-known/openid-configuration).",
    )
    client_id: str = Field(description="The client ID computectl is registered under.")
    client_secret_file: Path = Field(
        description="File holding the client secret (kept out of the settings file)."
    )
    redirect_uri: str = Field(
        max_length=2048,
        description="computectl's callback as registered with the provider: "
        "https://<this server>/oidc/callback.",
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "email", "profile", "groups"],
        max_length=32,
        description="Scopes asked for; must include 'openid'. 'groups' is what dex and many "
        "providers need to put the groups claim in the ID token.",
    )
    groups_claim: str = Field(
        "groups", min_length=1, max_length=128, description="The claim listing the groups."
    )
    groups: list[OidcGroupMapping] = Field(
        default_factory=list,
        max_length=1000,
        description="Group to role (and tenant); the first entry whose group a person is in "
        "decides. A person in none of them is refused.",
    )
    clock_skew_seconds: float = Field(
        60.0, ge=0, le=600, description="Leeway for the ID token's times against this clock."
    )
    login_timeout_seconds: float = Field(
        600.0, ge=30, le=3600, description="How long a person may take to log in at the provider."
    )
    http_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Timeout of each request to the provider."
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        check_url(v, "issuer")
        if urlsplit(v).query:
            # OpenID Connect Discovery 1.0, 2: the issuer has no query.
            raise ValueError("issuer must not hold a query")
        return v

    @field_validator("redirect_uri")
    @classmethod
    def _redirect(cls, v: str) -> str:
        return check_url(v, "redirect_uri")

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        if _CLIENT_ID.fullmatch(v) is None:
            raise ValueError("client_id must be 1-255 printable ASCII characters without spaces")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if _SCOPE.fullmatch(s) is None]
        if bad:
            raise ValueError(f"scope {bad[0]!a} is not a valid scope token")
        if "openid" not in v:
            raise ValueError("scopes must include 'openid'")
        return v

    @field_validator("client_secret_file")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()


def read_client_secret(settings: OidcSettings) -> str:
    """The client secret, read once at start-up; a missing or unusable file is one line
    (ConfigError: the command stops with exit 2)."""
    path = settings.client_secret_file
    try:
        raw = path.read_bytes()[:4097]
    except OSError as e:
        raise ConfigError(f"oidc.client_secret_file {path}: {e.strerror or e}") from None
    try:
        secret = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        secret = ""
    if not secret or len(secret) > 4096 or not secret.isprintable():
        raise ConfigError(f"oidc.client_secret_file {path} does not hold a usable secret")
    return secret
