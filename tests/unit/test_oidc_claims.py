"""From a provider's claims to a principal (compute.auth.oidc.principal_from_claims), and
the [oidc] settings that say how (compute.auth.oidc_settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from compute.auth.oidc import LoginFailed, principal_from_claims
from compute.auth.oidc_settings import OidcSettings, read_client_secret
from compute.auth.principal import Principal, Role
from compute.errors import ConfigError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAPPINGS = [
    {"group": "ops", "role": "operator"},
    {"group": "noc", "role": "viewer"},
    {"group": "team-a-admins", "role": "tenant-admin", "tenant": "team-a"},
    {"group": "team-a", "role": "tenant-member", "tenant": "team-a"},
    {"group": "team-b", "role": "tenant-member", "tenant": "team-b"},
]
KNOWN = {m["group"] for m in MAPPINGS}


def make(**over: Any) -> OidcSettings:
    base: dict[str, Any] = {
        "issuer": "https://id.example.com",
        "client_id": "computectl",
        "client_secret_file": "/etc/computectl/oidc-secret",
        "redirect_uri": "https://cc.example.com/oidc/callback",
        "groups": MAPPINGS,
    }
    return OidcSettings.model_validate(base | over)


SETTINGS = make()


def person(groups: object, **over: Any) -> dict[str, Any]:
    return {"email": "alice@example.com", "email_verified": True, "groups": groups} | over


def test_a_group_in_the_configuration_gives_its_role_and_tenant() -> None:
    p = principal_from_claims(person(["team-a"], name="Alice A."), SETTINGS, "10.0.0.5")
    assert p == Principal(
        subject="oidc:alice@example.com",
        role=Role.TENANT_MEMBER,
        tenant="team-a",
        name="Alice A.",
        source="10.0.0.5",
    )
    assert principal_from_claims(person(["ops"]), SETTINGS, "x").role is Role.OPERATOR


def test_the_first_listed_mapping_decides_whatever_the_order_of_the_groups() -> None:
    for groups in (["team-a", "team-a-admins"], ["team-a-admins", "team-a"]):
        p = principal_from_claims(person(groups), SETTINGS, "x")
        assert (p.role, p.tenant) == (Role.TENANT_ADMIN, "team-a")
    p = principal_from_claims(person(["team-b", "noc"]), SETTINGS, "x")
    assert (p.role, p.tenant) == (Role.VIEWER, None)


@FAST
@given(st.lists(st.text(max_size=20).filter(lambda g: g not in KNOWN), max_size=8))
def test_groups_the_configuration_does_not_list_give_no_access(groups: list[str]) -> None:
    with pytest.raises(LoginFailed, match="none of the groups"):
        principal_from_claims(person(groups), SETTINGS, "x")


@FAST
@given(
    st.lists(st.text(max_size=20), max_size=8),
    st.sampled_from(MAPPINGS),
)
def test_a_listed_group_always_gives_the_first_mapping_the_person_is_in(
    others: list[str], picked: dict[str, str]
) -> None:
    groups = [*others, picked["group"]]
    p = principal_from_claims(person(groups), SETTINGS, "x")
    first = next(m for m in MAPPINGS if m["group"] in groups)
    assert (p.role.value, p.tenant) == (first["role"], first.get("tenant"))
    assert p.subject == "oidc:alice@example.com"


@FAST
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=20),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        st.lists(st.one_of(st.none(), st.integers(), st.lists(st.just("ops"))), max_size=4),
    )
)
def test_a_groups_claim_that_is_not_a_list_of_strings_gives_no_access(groups: object) -> None:
    with pytest.raises(LoginFailed):
        principal_from_claims(person(groups), SETTINGS, "x")


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        (person(["ops"], email=None), "no usable email"),
        (person(["ops"], email="not-an-address"), "no usable email"),
        (person(["ops"], email="a b@example.com"), "no usable email"),
        (person(["ops"], email="a\x00@example.com"), "no usable email"),
        (person(["ops"], email=["alice@example.com"]), "no usable email"),
        (person(["ops"], email_verified=False), "not verified"),
    ],
)
def test_a_person_without_a_usable_verified_email_gets_nothing(
    claims: dict[str, Any], why: str
) -> None:
    with pytest.raises(LoginFailed, match=why):
        principal_from_claims(claims, SETTINGS, "x")


def test_an_unprintable_or_overlong_name_shows_the_email_instead() -> None:
    for name in ("\x1b[31mroot", "x" * 500, 7, ""):
        p = principal_from_claims(person(["ops"], name=name), SETTINGS, "x")
        assert p.name == "alice@example.com"


def test_another_groups_claim_is_read_where_configured() -> None:
    s = make(groups_claim="roles")
    p = principal_from_claims(person([], roles=["noc"]), s, "x")
    assert p.role is Role.VIEWER


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"issuer": "http://id.example.com"}, "must use https"),
        ({"issuer": "ftp://id.example.com"}, "absolute https URL"),
        ({"issuer": "https://id.example.com/?tenant=x"}, "query"),
        ({"issuer": "https://u:p@id.example.com"}, "credentials"),
        ({"redirect_uri": "http://cc.example.com/cb"}, "must use https"),
        ({"redirect_uri": "/oidc/callback"}, "absolute"),
        ({"scopes": ["email"]}, "openid"),
        ({"scopes": ["openid", "a b"]}, "scope token"),
        ({"client_id": "has space"}, "client_id"),
        ({"groups": [{"group": "g", "role": "node"}]}, "for machines"),
        ({"groups": [{"group": "g", "role": "tenant-admin"}]}, "needs a tenant"),
        ({"groups": [{"group": "g", "role": "operator", "tenant": "team-a"}]}, "takes no tenant"),
        ({"groups": [{"group": "g", "role": "tenant-member", "tenant": "A!"}]}, "not valid"),
        ({"groups": [{"group": "g", "role": "root"}]}, "role"),
        ({"clock_skew_seconds": 3600}, "less than or equal"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_settings_that_would_let_the_wrong_people_in_are_refused(
    over: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        make(**over)


def test_plain_http_is_allowed_to_this_machine_only() -> None:
    s = make(issuer="http://127.0.0.1:35556/dex", redirect_uri="http://localhost:8080/cb")
    assert s.issuer == "http://127.0.0.1:35556/dex"
    assert s.scopes == ["openid", "email", "profile", "groups"]


def test_the_client_secret_is_read_from_its_file(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text("  s3cret\n")
    assert read_client_secret(make(client_secret_file=str(f))) == "s3cret"
    for content in (b"", b"\n", b"\xff\xfe", b"a\x00b", b"x" * 5000):
        f.write_bytes(content)
        with pytest.raises(ConfigError, match="usable secret"):
            read_client_secret(make(client_secret_file=str(f)))
    with pytest.raises(ConfigError, match="No such file"):
        read_client_secret(make(client_secret_file=str(tmp_path / "missing")))
