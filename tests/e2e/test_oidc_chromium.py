"""Single sign-on in real Chromium against real dex: a person types their password into
dex's form and comes back to computectl logged in, with the role their group maps to;
a person in no configured group comes back refused, with no session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from compute.api import create_app
from compute.runtime import Runtime
from compute.services import sessions
from compute.testing import make_runtime
from tests.e2e.conftest import chromium, serving
from tests.integration.conftest_dex import USERS, Dex, DexUser, dex  # noqa: F401
from tests.integration.test_oidc_routes import oidc_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path, dex: Dex) -> Iterator[str]:  # noqa: F811
    """computectl's app served at the redirect URI dex knows (its host and port)."""
    rt: Runtime = make_runtime(tmp_path, {"oidc": oidc_config(dex)})
    app = create_app(rt)
    where = urlsplit(dex.redirect_uri)
    assert where.hostname is not None and where.port is not None
    try:
        with serving(app, where.port):
            yield f"{where.scheme}://{where.netloc}"
    finally:
        rt.close()


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 800})


def _log_in_at_dex(page: Any, base: str, dex: Dex, user: DexUser, next_path: str) -> None:  # noqa: F811
    page.goto(f"{base}/login/oidc?next={next_path}")
    page.wait_for_selector("#login", timeout=15_000)
    assert page.url.startswith(dex.issuer)  # at dex's own password form
    page.fill("#login", user.email)
    page.fill("#password", user.password)
    page.press("#password", "Enter")  # the keyboard, as a person would


def test_a_person_logs_in_through_dex_in_chromium(page: Any, server: str, dex: Dex) -> None:  # noqa: F811
    _log_in_at_dex(page, server, dex, USERS["alice"], "/api/v1/whoami")
    page.wait_for_url(f"{server}/api/v1/whoami", timeout=15_000)
    shown = page.inner_text("body")
    assert '"subject":"oidc:alice@example.com"' in shown.replace(" ", "")
    assert '"role":"tenant-admin"' in shown.replace(" ", "")
    assert '"tenant":"team-a"' in shown.replace(" ", "")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies[sessions.COOKIE]["httpOnly"] and cookies[sessions.COOKIE]["sameSite"] == "Strict"
    assert "computectl_oidc" not in cookies  # spent with the callback


def test_a_person_in_no_configured_group_is_refused_in_chromium(
    page: Any,
    server: str,
    dex: Dex,  # noqa: F811
) -> None:
    _log_in_at_dex(page, server, dex, USERS["mallory"], "/api/v1/whoami")
    page.wait_for_selector("[data-testid=login-error]", timeout=15_000)
    assert "none of the groups" in page.inner_text("[data-testid=login-error]")
    assert sessions.COOKIE not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{server}/api/v1/whoami")
    assert '"status":401' in page.inner_text("body").replace(" ", "")
