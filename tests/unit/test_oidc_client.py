"""The OIDC client (compute.auth.oidc) against a provider double that answers as dex does:
discovery, the authorization URL, the pending-login cookie, the code exchange and every
check on the ID token. The real provider is in tests/integration/test_oidc_dex.py."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.auth.oidc import LoginFailed, OidcClient, OidcError, pkce_challenge, safe_next_path
from compute.auth.oidc_http import Refused
from compute.auth.oidc_settings import OidcSettings
from tests.unit.oidc_keys import D2, N1, N2, jwk, make_jwt

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ISSUER = "https://id.example.com/dex"
NOW = 1_800_000_000.0


class Provider:
    """Answers like dex: a discovery document, a key set, a token endpoint that hands out
    the ID token the test sets. Records what the client sent."""

    def __init__(self) -> None:
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/keys",
            "code_challenge_methods_supported": ["S256", "plain"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
        self.keys: dict[str, Any] = {"keys": [jwk(N1, "k1")]}
        self.id_token = ""
        self.gets: list[str] = []
        self.posts: list[tuple[str, dict[str, str], tuple[str, str] | None]] = []

    def get_json(self, url: str) -> Any:
        self.gets.append(url)
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return self.discovery
        if url == f"{ISSUER}/keys":
            return self.keys
        raise OidcError(f"{url} answered HTTP 404")

    def post_form(
        self, url: str, form: Mapping[str, str], *, basic: tuple[str, str] | None = None
    ) -> Any:
        self.posts.append((url, dict(form), basic))
        return {"token_type": "bearer", "access_token": "x", "id_token": self.id_token}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def oidc_settings(**over: Any) -> OidcSettings:
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": "computectl",
        "client_secret_file": Path("/nonexistent"),
        "redirect_uri": "https://cc.example.com/oidc/callback",
    }
    return OidcSettings.model_validate(base | over)


def client(provider: Provider, clock: Clock, **over: Any) -> OidcClient:
    return OidcClient(oidc_settings(**over), "s3cret", http=provider, clock=clock)


def claims(expected_nonce: str, **over: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": "CiQwOGE4",
        "aud": "computectl",
        "exp": NOW + 3600,
        "iat": NOW,
        "nonce": expected_nonce,
        "email": "alice@example.com",
        "email_verified": True,
        "groups": ["ops"],
    } | over


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_authorization_url_carries_state_nonce_and_an_s256_challenge(
    provider: Provider, clock: Clock
) -> None:
    c = client(provider, clock)
    url, cookie = c.begin("/portal/team-a")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/auth"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    pending = c.unseal(cookie)
    assert pending is not None
    assert q == {
        "response_type": "code",
        "client_id": "computectl",
        "redirect_uri": "https://cc.example.com/oidc/callback",
        "scope": "openid email profile groups",
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": pkce_challenge(pending.verifier),
        "code_challenge_method": "S256",
    }
    assert 43 <= len(pending.verifier) <= 128
    assert pending.next_path == "/portal/team-a"
    assert pending.expires_at == NOW + 600
    # Each login its own secrets.
    other = c.unseal(c.begin()[1])
    assert other is not None
    assert {other.state, other.nonce, other.verifier} & {
        pending.state,
        pending.nonce,
        pending.verifier,
    } == set()


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_login_finishes_with_the_verified_claims(provider: Provider, clock: Clock) -> None:
    c = client(provider, clock)
    _, cookie = c.begin("/next")
    pending = c.unseal(cookie)
    assert pending is not None
    provider.id_token = make_jwt(claims(pending.nonce))
    got, next_path = c.finish(cookie, {"state": pending.state, "code": "the-code"})
    assert got["email"] == "alice@example.com"
    assert next_path == "/next"
    url, form, basic = provider.posts[0]
    assert url == f"{ISSUER}/token"
    assert form == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "https://cc.example.com/oidc/callback",
        "code_verifier": pending.verifier,
    }
    assert basic == ("computectl", "s3cret")


def test_the_secret_goes_in_the_body_where_the_provider_takes_only_that(
    provider: Provider, clock: Clock
) -> None:
    provider.discovery["token_endpoint_auth_methods_supported"] = ["client_secret_post"]
    c = client(provider, clock)
    c.exchange("code", "v" * 43)
    _, form, basic = provider.posts[0]
    assert basic is None
    assert form["client_id"] == "computectl"
    assert form["client_secret"] == "s3cret"


def _finish(c: OidcClient, provider: Provider, **over: Any) -> dict[str, Any]:
    _, cookie = c.begin()
    pending = c.unseal(cookie)
    assert pending is not None
    provider.id_token = make_jwt(claims(pending.nonce, **over))
    return c.finish(cookie, {"state": pending.state, "code": "c"})[0]


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"iss": "https://evil.example.com/dex"}, "another issuer"),
        ({"aud": "another-client"}, "not for this client"),
        ({"aud": ["computectl", "other"]}, "another party"),
        ({"aud": ["computectl", "other"], "azp": "other"}, "another party"),
        ({"azp": "other"}, "another party"),
        ({"exp": NOW - 61}, "expired"),
        ({"iat": NOW + 61}, "not valid yet"),
        ({"nbf": NOW + 61}, "not valid yet"),
        ({"exp": True}, "times"),
        ({"exp": "soon"}, "times"),
        ({"iat": None}, "times"),
        ({"nonce": "replayed"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": ""}, "subject"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(
    provider: Provider, clock: Clock, over: dict[str, Any], why: str
) -> None:
    with pytest.raises(LoginFailed, match=why):
        _finish(client(provider, clock), provider, **over)


def test_times_within_the_clock_skew_pass(provider: Provider, clock: Clock) -> None:
    got = _finish(client(provider, clock), provider, exp=NOW - 30, iat=NOW + 30)
    assert got["exp"] == NOW - 30
    got = _finish(client(provider, clock), provider, aud=["computectl", "b"], azp="computectl")
    assert got["azp"] == "computectl"


def test_a_token_signed_by_a_key_the_provider_does_not_hold_is_refused(
    provider: Provider, clock: Clock
) -> None:
    c = client(provider, clock)
    _, cookie = c.begin()
    pending = c.unseal(cookie)
    assert pending is not None
    provider.id_token = make_jwt(claims(pending.nonce), n=N2, d=D2, kid="k1")
    with pytest.raises(LoginFailed, match="signature"):
        c.finish(cookie, {"state": pending.state, "code": "c"})


def test_a_rotated_key_is_fetched_once_not_for_every_token(
    provider: Provider, clock: Clock
) -> None:
    c = client(provider, clock)
    _finish(c, provider)
    assert provider.gets.count(f"{ISSUER}/keys") == 1
    _finish(c, provider)
    assert provider.gets.count(f"{ISSUER}/keys") == 1  # kept
    provider.keys = {"keys": [jwk(N2, "k2")]}
    clock.now += 11
    _, cookie = c.begin()
    pending = c.unseal(cookie)
    assert pending is not None
    provider.id_token = make_jwt(claims(pending.nonce), n=N2, d=D2, kid="k2")
    c.finish(cookie, {"state": pending.state, "code": "c"})
    assert provider.gets.count(f"{ISSUER}/keys") == 2
    # Tokens naming keys nobody has do not make the client hammer the provider.
    for _ in range(3):
        with pytest.raises(LoginFailed, match="no key"):
            c.verify_id_token(make_jwt({}, kid="k9"), "n")
    assert provider.gets.count(f"{ISSUER}/keys") == 2
    clock.now += 11
    with pytest.raises(LoginFailed, match="no key"):
        c.verify_id_token(make_jwt({}, kid="k9"), "n")
    assert provider.gets.count(f"{ISSUER}/keys") == 3


def test_the_browser_must_bring_back_its_own_login(provider: Provider, clock: Clock) -> None:
    c = client(provider, clock)
    _, cookie = c.begin()
    pending = c.unseal(cookie)
    assert pending is not None
    with pytest.raises(LoginFailed, match="state"):
        c.finish(cookie, {"state": "someone-elses", "code": "c"})
    with pytest.raises(LoginFailed, match="no login in progress"):
        c.finish(None, {"state": pending.state, "code": "c"})
    with pytest.raises(LoginFailed, match="refused the login: 'access_denied'"):
        c.finish(cookie, {"error": "access_denied", "state": pending.state})
    with pytest.raises(LoginFailed, match="no usable code"):
        c.finish(cookie, {"state": pending.state})
    # Another client secret (another deployment) cannot have sealed it.
    other = OidcClient(oidc_settings(), "other-secret", http=provider, clock=clock)
    assert other.unseal(cookie) is None
    clock.now += 601
    assert c.unseal(cookie) is None
    assert provider.posts == []


@FAST
@given(st.text(max_size=200))
def test_a_forged_or_mangled_cookie_is_no_login(cookie: str) -> None:
    c = OidcClient(oidc_settings(), "s3cret", http=Provider(), clock=Clock())
    assert c.unseal(cookie) is None


def test_a_cookie_with_one_byte_changed_is_no_login(provider: Provider, clock: Clock) -> None:
    c = client(provider, clock)
    _, cookie = c.begin()
    body, mac = cookie.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[5] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert c.unseal(f"{forged}.{mac}") is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"issuer": "https://evil.example.com/dex"}, "names its issuer"),
        ({"token_endpoint": "http://id.example.com/dex/token"}, "must use https"),
        ({"jwks_uri": None}, "no jwks_uri"),
        ({"code_challenge_methods_supported": ["plain"]}, "PKCE"),
        ({"id_token_signing_alg_values_supported": ["HS256"]}, "RS256"),
    ],
)
def test_a_discovery_document_that_cannot_be_trusted_is_refused(
    provider: Provider, clock: Clock, change: dict[str, Any], why: str
) -> None:
    provider.discovery |= change
    with pytest.raises(OidcError, match=why):
        client(provider, clock).begin()


def test_discovery_is_read_once(provider: Provider, clock: Clock) -> None:
    c = client(provider, clock)
    c.begin()
    c.begin()
    assert provider.gets == [f"{ISSUER}/.well-known/openid-configuration"]


@FAST
@given(st.one_of(st.none(), st.text(max_size=100)))
def test_after_login_the_browser_goes_only_to_a_path_here(value: str | None) -> None:
    got = safe_next_path(value)
    assert got.startswith("/")
    assert not got.startswith("//")
    assert "\\" not in got
    assert got == value or got == "/"


@pytest.mark.parametrize(
    "value", ["//evil.example.com/", "https://evil.example.com/", "/\\evil.example.com", "evil"]
)
def test_next_paths_that_leave_the_site_become_the_root(value: str) -> None:
    assert safe_next_path(value) == "/"


@pytest.mark.parametrize(
    ("raised", "seen"),
    [
        (Refused("token answered HTTP 400 (invalid_grant)"), LoginFailed),
        (OidcError("token answered HTTP 503"), OidcError),
    ],
)
def test_a_refused_code_is_the_logins_failure_a_provider_fault_is_not(
    provider: Provider, clock: Clock, raised: OidcError, seen: type[OidcError]
) -> None:
    def post_form(*args: Any, **kwargs: Any) -> Any:
        raise raised

    provider.post_form = post_form  # type: ignore[method-assign]
    with pytest.raises(seen) as caught:
        client(provider, clock).exchange("code", "v" * 43)
    assert (type(caught.value) is LoginFailed) == (seen is LoginFailed)


def test_a_key_set_that_could_not_be_read_is_tried_again_at_the_next_login(
    provider: Provider, clock: Clock
) -> None:
    c = client(provider, clock)
    real = provider.get_json
    down = {"keys": True}

    def flaky(url: str) -> Any:
        if url.endswith("/keys") and down["keys"]:
            raise OidcError(f"{url} could not be reached: connection refused")
        return real(url)

    provider.get_json = flaky  # type: ignore[method-assign]
    with pytest.raises(OidcError, match="could not be reached"):
        _finish(c, provider)
    down["keys"] = False
    assert _finish(c, provider)["email"] == "alice@example.com"  # no 10 s wait
