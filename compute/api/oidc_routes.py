"""Single sign-on for people: /login/oidc sends the browser to the OpenID provider,
/oidc/callback brings it back with a code, and a verified identity in a configured group
gets a session, the same session a pasted token gets (compute/services/sessions.py).

The login in progress travels in its own cookie (``computectl_oidc``), HttpOnly and
SameSite=Lax, not Strict: the provider's redirect back is a navigation from another site,
on which a Strict cookie would not be sent. It is good for one login and this path only.
For the same reason the callback answers with a page that moves on, not a redirect.
A callback that fails (wrong state, bad token, a person in no configured group) is audited
and counted against its source like any failed login.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from compute.api.auth import Door, cookie, source_of
from compute.api.pages import secure_cookies, start_session
from compute.auth.oidc import LoginFailed, OidcClient, OidcError, principal_from_claims
from compute.auth.oidc_settings import OidcSettings, read_client_secret

oidc_pages = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "computectl_oidc"
CALLBACK = "/oidc/callback"
# A callback's parameters are a code, a state and perhaps an error: short.
_MAX_PARAM = 2048


def build_oidc_client(settings: OidcSettings | None) -> OidcClient | None:
    """Built once at start-up (app.state.oidc); None when [oidc] is not configured. A
    client secret file that cannot be read stops the start with one line (ConfigError)."""
    if settings is None:
        return None
    return OidcClient(settings, read_client_secret(settings))


def _page(message: str, status: int) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>computectl — single sign-on</title></head><body><main>"
        f'<h1>Single sign-on</h1><p role="alert" data-testid="login-error">'
        f"{html.escape(message)}</p>"
        '<p><a href="/login">Back to the login page</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status)


def _client(request: Request) -> OidcClient | None:
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    return client


@oidc_pages.get("/login/oidc")
def login_oidc(request: Request) -> Response:
    client = _client(request)
    if client is None:
        return _page("Single sign-on is not configured on this control plane.", 404)
    try:
        url, pending = client.begin(request.query_params.get("next"))
    except OidcError as exc:
        return _page(f"The identity provider cannot be used right now: {exc}", 502)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        pending,
        max_age=int(client.settings.login_timeout_seconds),
        path=CALLBACK,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response


@oidc_pages.get(CALLBACK)
def oidc_callback(request: Request) -> Response:
    client = _client(request)
    if client is None:
        return _page("Single sign-on is not configured on this control plane.", 404)
    door: Door = request.app.state.door
    source = source_of(request.scope)
    wait = door.retry_after(source)
    if wait > 0:
        return _page(f"Too many failed logins from {source}; try again in {wait:.0f} s.", 429)
    params = {
        k: v
        for k in ("code", "state", "error")
        if (v := request.query_params.get(k)) is not None and len(v) <= _MAX_PARAM
    }
    pending = cookie(dict(request.headers), LOGIN_COOKIE)
    try:
        claims, next_path = client.finish(pending, params)
        principal = principal_from_claims(claims, client.settings, source)
    except LoginFailed as exc:
        door.failed_login(source, f"single sign-on: {exc}", "oidc")
        return _forget(_page(f"Login refused: {exc}", 403))
    except OidcError as exc:
        # The provider is down or misbehaving: not this person's failure to count.
        return _forget(_page(f"The identity provider cannot be used right now: {exc}", 502))
    return start_session(
        request,
        door,
        principal,
        source,
        _forget(_onward(next_path)),
        target="session (single sign-on)",
    )


def _onward(next_path: str) -> HTMLResponse:
    """A page that moves on by itself, not a redirect: the callback is reached from the
    provider's site, and a browser leaves SameSite=Strict cookies (the new session's) off
    every request of a redirect chain another site started. The page's own navigation is
    this site's, so the session cookie goes with it."""
    where = html.escape(next_path, quote=True)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={where}">'
        "<title>computectl — logged in</title></head><body><main>"
        f'<p>Logged in. <a href="{where}">Continue</a></p></main></body></html>'
    )
    return HTMLResponse(body)


def _forget(response: Response) -> Response:
    """A login cookie is good for one callback, whatever came of it."""
    response.delete_cookie(LOGIN_COOKIE, path=CALLBACK)
    return response
