"""Single sign-on against a real OpenID provider (dex, from testenv/dex): computectl's OIDC
client starts a login, a person logs in at dex's password form (driven here with plain
HTTP requests, as a browser would post it), dex redirects to the callback with a code,
and the client exchanges it, verifies dex's signed ID token and maps the groups dex
vouches for to a role. Nothing listens at the redirect URI: the test reads the code from
dex's redirect, as the callback route would receive it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest

from compute.auth import jws
from compute.auth.oidc import LoginFailed, OidcClient, principal_from_claims
from compute.auth.oidc_settings import OidcSettings, read_client_secret
from compute.auth.principal import Role
from tests.integration.conftest_dex import USERS, Dex, DexUser, dex  # noqa: F401

pytestmark = pytest.mark.integration

GROUPS = [
    {"group": "computectl-operators", "role": "operator"},
    {"group": "computectl-viewers", "role": "viewer"},
    {"group": "team-a-admins", "role": "tenant-admin", "tenant": "team-a"},
    {"group": "team-a", "role": "tenant-member", "tenant": "team-a"},
    {"group": "team-b", "role": "tenant-member", "tenant": "team-b"},
]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Forms(HTMLParser):
    """The post forms of a page, with the names of their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self.forms.append((a.get("action") or "", set()))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1][1].add(a["name"] or "")


class Browser:
    """As much of a browser as logging in at dex takes: cookies, redirects followed one
    by one (so the walk stops at the redirect URI), and the password form posted."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirects
        )
        self.posted = 0

    def _open(self, url: str, form: dict[str, str] | None) -> tuple[int, str, str]:
        data = urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(urllib.request.Request(url, data=data), timeout=10) as r:
                return r.status, "", r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Location") or "", e.read().decode()

    def login(self, url: str, user: DexUser, password: str, stop_at: str) -> str | None:
        """Where dex finally sends the browser at ``stop_at`` (with the code), or None
        if it shows the password form again (a wrong password)."""
        form: dict[str, str] | None = None
        for _ in range(12):
            status, location, body = self._open(url, form)
            form = None
            if 300 <= status < 400:
                url = urljoin(url, location)
                if url.startswith(stop_at):
                    return url
                continue
            if status == 401 and self.posted:
                return None  # the form again, with dex's "Invalid username and password"
            assert status == 200, f"dex answered {status} at {url}: {body[:300]}"
            parser = _Forms()
            parser.feed(body)
            login = [f for f in parser.forms if {"login", "password"} <= f[1]]
            assert login, f"no password form at {url}: {body[:300]}"
            assert not self.posted, "dex showed the password form twice"
            self.posted += 1
            url = urljoin(url, login[0][0])
            form = {"login": user.email, "password": password}
        raise AssertionError("dex's login took more than 12 steps")


def _settings(dex: Dex) -> OidcSettings:  # noqa: F811
    return OidcSettings.model_validate(
        {
            "issuer": dex.issuer,
            "client_id": dex.client_id,
            "client_secret_file": str(dex.client_secret_file),
            "redirect_uri": dex.redirect_uri,
            "groups": GROUPS,
        }
    )


@pytest.fixture
def client(dex: Dex) -> OidcClient:  # noqa: F811
    s = _settings(dex)
    return OidcClient(s, read_client_secret(s))


def _code(client: OidcClient, user: DexUser, next_path: str = "/") -> tuple[str, dict[str, str]]:
    """Log ``user`` in at dex: the pending-login cookie and the callback's parameters."""
    url, cookie = client.begin(next_path)
    landed = Browser().login(url, user, user.password, client.settings.redirect_uri)
    assert landed is not None, "dex did not accept the password"
    return cookie, dict(parse_qsl(urlsplit(landed).query))


@pytest.mark.parametrize(
    ("who", "role", "tenant"),
    [
        ("ops", Role.OPERATOR, None),
        ("noc", Role.VIEWER, None),
        # in team-a and team-a-admins: the first listed mapping decides
        ("alice", Role.TENANT_ADMIN, "team-a"),
        ("bob", Role.TENANT_MEMBER, "team-b"),
    ],
)
def test_a_person_logs_in_at_dex_and_gets_the_role_of_their_group(
    client: OidcClient, who: str, role: Role, tenant: str | None
) -> None:
    user = USERS[who]
    cookie, params = _code(client, user, "/portal/here")
    assert set(params) == {"code", "state"}
    claims, next_path = client.finish(cookie, params)
    assert next_path == "/portal/here"
    assert claims["iss"] == client.settings.issuer
    assert claims["email"] == user.email
    assert sorted(claims["groups"]) == sorted(user.groups)
    p = principal_from_claims(claims, client.settings, "127.0.0.1")
    assert (p.subject, p.role, p.tenant) == (f"oidc:{user.email}", role, tenant)


@pytest.mark.parametrize("who", ["mallory", "nogroups"])
def test_a_person_dex_knows_but_in_no_configured_group_gets_nothing(
    client: OidcClient, who: str
) -> None:
    cookie, params = _code(client, USERS[who])
    claims, _ = client.finish(cookie, params)  # dex vouches for them...
    with pytest.raises(LoginFailed, match="none of the groups"):
        principal_from_claims(claims, client.settings, "127.0.0.1")  # ...computectl does not


def test_a_wrong_password_gets_no_code(client: OidcClient) -> None:
    url, _ = client.begin()
    user = USERS["ops"]
    assert Browser().login(url, user, "not-the-password", client.settings.redirect_uri) is None


def test_a_code_is_good_once_and_only_with_this_logins_verifier(client: OidcClient) -> None:
    cookie, params = _code(client, USERS["ops"])
    pending = client.unseal(cookie)
    assert pending is not None
    # The right code with another login's PKCE verifier: dex refuses it.
    other = client.unseal(client.begin()[1])
    assert other is not None
    with pytest.raises(LoginFailed, match="refused the code"):
        client.exchange(params["code"], other.verifier)
    # With its own verifier it finishes; after that the code is spent.
    claims, _ = client.finish(cookie, params)
    assert claims["email"] == USERS["ops"].email
    with pytest.raises(LoginFailed, match="refused the code"):
        client.finish(cookie, params)


def test_a_callback_with_another_logins_state_is_refused_before_dex_is_asked(
    client: OidcClient,
) -> None:
    _, params = _code(client, USERS["ops"])
    _, my_cookie = client.begin()
    with pytest.raises(LoginFailed, match="state"):
        client.finish(my_cookie, params)


def test_dexs_id_token_verifies_only_as_it_was_signed(client: OidcClient) -> None:
    cookie, params = _code(client, USERS["alice"])
    pending = client.unseal(cookie)
    assert pending is not None
    token = client.exchange(params["code"], pending.verifier)
    header = json.loads(jws.b64url_decode(token.split(".")[0]))
    assert header["alg"] == "RS256"
    assert client.verify_id_token(token, pending.nonce)["email"] == "alice@example.com"
    with pytest.raises(LoginFailed, match="nonce"):
        client.verify_id_token(token, "another-logins-nonce")
    # alice promotes herself: the signature no longer covers the payload.
    head, body, sig = token.split(".")
    claims = json.loads(jws.b64url_decode(body))
    claims["groups"] = ["computectl-operators"]
    forged = jws.b64url_encode(json.dumps(claims).encode())
    with pytest.raises(LoginFailed, match="signature"):
        client.verify_id_token(f"{head}.{forged}.{sig}", pending.nonce)


def test_dex_is_discovered_as_configured(client: OidcClient, dex: Dex) -> None:  # noqa: F811
    meta = client.metadata()
    assert meta.issuer == dex.issuer
    assert meta.authorization_endpoint == f"{dex.issuer}/auth"
    assert meta.token_endpoint == f"{dex.issuer}/token"
    assert meta.jwks_uri == f"{dex.issuer}/keys"
    assert not meta.secret_in_body
