"""The single sign-on routes (/login/oidc, /oidc/callback) of the real app, against real
dex: the browser's walk is the test client to computectl and plain HTTP to dex's
password form, and a person in a configured group ends with the same session a pasted
token gives (its cookie, its CSRF token, the audit entry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.api.oidc_routes import CALLBACK, LOGIN_COOKIE
from compute.auth.principal import local_principal
from compute.runtime import Runtime
from compute.services import audit, sessions
from compute.testing import make_runtime
from tests.integration.conftest_dex import USERS, Dex, DexUser, dex  # noqa: F401
from tests.integration.test_oidc_dex import GROUPS, Browser

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path)
    yield runtime
    runtime.close()


def oidc_config(dex: Dex) -> dict[str, object]:  # noqa: F811
    """The [oidc] table that points computectl at the test's dex."""
    return {
        "issuer": dex.issuer,
        "client_id": dex.client_id,
        "client_secret_file": str(dex.client_secret_file),
        "redirect_uri": dex.redirect_uri,
        "groups": GROUPS,
    }


@pytest.fixture
def sso_rt(tmp_path: Path, dex: Dex) -> Iterator[Runtime]:  # noqa: F811
    runtime = make_runtime(tmp_path, {"oidc": oidc_config(dex)})
    yield runtime
    runtime.close()


@pytest.fixture
def browser(sso_rt: Runtime, dex: Dex) -> Iterator[TestClient]:  # noqa: F811
    app = create_app(sso_rt)
    # The app answers at the redirect URI dex knows.
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(dex.redirect_uri))
    with TestClient(app, base_url=origin, follow_redirects=False) as c:
        yield c


def _log_in(browser: TestClient, user: DexUser, next_path: str = "/") -> httpx2.Response:
    start = browser.get("/login/oidc", params={"next": next_path})
    assert start.status_code == 303, start.text
    assert LOGIN_COOKIE in start.headers["set-cookie"]
    assert "samesite=lax" in start.headers["set-cookie"].lower()
    landed = Browser().login(
        start.headers["location"], user, user.password, str(browser.base_url) + CALLBACK
    )
    assert landed is not None
    parts = urlsplit(landed)
    return browser.get(f"{parts.path}?{parts.query}")


def test_a_person_in_a_configured_group_gets_a_session(
    browser: TestClient, sso_rt: Runtime
) -> None:
    back = _log_in(browser, USERS["alice"], "/api/v1/whoami")
    assert back.status_code == 200
    assert 'content="0;url=/api/v1/whoami"' in back.text
    assert browser.cookies.get(sessions.COOKIE)
    me = browser.get("/api/v1/whoami").json()
    assert (me["subject"], me["role"], me["tenant"]) == (
        "oidc:alice@example.com",
        "tenant-admin",
        "team-a",
    )
    # The tenant-admin of team-a reads its own tenant's audit trail only; its login is there.
    entries = audit.read(sso_rt.store, local_principal("test"), actor="oidc:alice@example.com")
    assert [(e.action, e.result, e.tenant) for e in entries] == [("auth.login", "ok", "team-a")]
    # A change from the session needs the CSRF token, as any session's does.
    assert browser.post("/api/v1/tokens", json={"role": "tenant-member"}).status_code == 403


def test_a_person_in_no_configured_group_gets_no_session(
    browser: TestClient, sso_rt: Runtime
) -> None:
    back = _log_in(browser, USERS["mallory"])
    assert back.status_code == 403
    assert "none of the groups" in back.text
    assert not browser.cookies.get(sessions.COOKIE)
    assert browser.get("/api/v1/whoami").status_code == 401
    refused = audit.read(sso_rt.store, local_principal("test"), actor="anonymous")
    assert any(e.action == "auth.login" and "mallory@example.com" in e.result for e in refused)


def test_a_callback_without_the_browsers_login_cookie_is_refused(
    browser: TestClient,
    dex: Dex,  # noqa: F811
) -> None:
    start = browser.get("/login/oidc")
    user = USERS["ops"]
    landed = Browser().login(
        start.headers["location"], user, user.password, str(browser.base_url) + CALLBACK
    )
    assert landed is not None
    browser.cookies.clear()  # another browser brings this code
    parts = urlsplit(landed)
    back = browser.get(f"{parts.path}?{parts.query}")
    assert back.status_code == 403
    assert "no login in progress" in back.text
    assert not browser.cookies.get(sessions.COOKIE)


def test_without_oidc_configured_the_routes_say_so(rt: Runtime) -> None:
    app = create_app(rt)
    with TestClient(app, follow_redirects=False) as c:
        assert c.get("/login/oidc").status_code == 404
        assert c.get(CALLBACK, params={"code": "x", "state": "y"}).status_code == 404
