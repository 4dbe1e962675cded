"""Logging a browser in and out: paste an API token at /login, get a session.

The session cookie is HttpOnly and SameSite=Strict (and Secure over https); the CSRF token
goes in a cookie the page can read, and back in ``X-CSRF-Token`` on every change
(compute/services/sessions.py). Failed attempts are audited and rate-limited per source,
as a bad bearer token is (compute/api/auth.py).
"""

from __future__ import annotations

import html
from datetime import datetime
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from compute.api.auth import Door, cookie, source_of
from compute.auth.policy import Unauthenticated
from compute.auth.principal import Principal, Role
from compute.services import audit, sessions
from compute.store import identities

pages = APIRouter(include_in_schema=False)
# A login form is a token and a little more.
_MAX_FORM = 8192


_SSO_LINK = '<p><a href="/login/oidc" data-testid="sso">Log in with single sign-on</a></p>'


def _form(request: Request, message: str = "", status: int = 200) -> HTMLResponse:
    page = resources.files("compute").joinpath("web/login.html").read_text()
    sso = _SSO_LINK if getattr(request.app.state, "oidc", None) is not None else ""
    page = page.replace("{{message}}", html.escape(message)).replace("{{sso}}", sso)
    return HTMLResponse(page, status_code=status)


def cross_site(request: Request) -> bool:
    """A form posted from another site (login CSRF: logging a victim in as the attacker;
    forced logout). Browsers say so in Sec-Fetch-Site, or in an Origin naming another host;
    a client that sends neither (curl, scripts) is not a browser being led."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")


def secure_cookies(request: Request) -> bool:
    """Whether the login cookies are Secure: as configured, else when the request came
    over https (behind a TLS proxy it looks like http: set [server] secure_cookies)."""
    configured: bool | None = request.app.state.runtime.settings.server.secure_cookies
    return request.url.scheme == "https" if configured is None else configured


def _door(request: Request) -> Door:
    door: Door = request.app.state.door
    return door


@pages.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _form(request)


@pages.post("/login")
async def login(request: Request) -> Response:
    door, source = _door(request), source_of(request.scope)
    if cross_site(request):
        return _form(request, "A login must come from this site's own form.", 403)
    raw = await request.body()
    fields = parse_qs(raw.decode("utf-8", "replace")) if len(raw) <= _MAX_FORM else {}
    token = (fields.get("token") or [""])[0].strip()
    # The store's reads and writes are blocking: off the event loop.
    return await run_in_threadpool(_login, request, door, source, token)


def _login(request: Request, door: Door, source: str, token: str) -> Response:
    try:
        principal = door.authenticate(token, source)
    except Unauthenticated as exc:
        # A valid token logs in from any address; failures past the limit are held.
        wait = door.retry_after(source)
        if wait > 0:
            return _form(
                request, f"Too many failed logins from {source}; try again in {wait:.0f} s.", 429
            )
        door.failed_login(source, f"login form: {exc}", "login")
        return _form(request, "That token is not valid (unknown, expired or revoked).", 401)
    if principal.role is Role.NODE:
        door.failed_login(source, "login form: a node's token", f"{principal.subject}")
        return _form(request, "A node's token reports health; it does not log people in.", 403)
    return start_session(
        request,
        door,
        principal,
        source,
        RedirectResponse("/", status_code=303),
        target="session",
        until=_token_expiry(door, principal),
    )


def start_session(
    request: Request,
    door: Door,
    principal: Principal,
    source: str,
    response: Response,
    *,
    target: str,
    until: datetime | None = None,
) -> Response:
    """A logged-in browser, however it proved who it is (a pasted token, single sign-on):
    the session, its audit entry, and its two cookies on ``response``."""
    value, csrf = sessions.create_session(door.store, principal, now=door.wall(), until=until)
    audit.record(
        door.store,
        at=door.clock.now(),
        actor=principal.actor,
        action="auth.login",
        target=target,
        source=source,
        result="ok",
        tenant=principal.tenant,
    )
    secure = secure_cookies(request)
    response.set_cookie(
        sessions.COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(
        sessions.CSRF_COOKIE, csrf, httponly=False, samesite="strict", secure=secure, path="/"
    )
    return response


@pages.post("/logout")
def logout(request: Request) -> Response:
    door, source = _door(request), source_of(request.scope)
    if cross_site(request):
        return _form(request, "A logout must come from this site's own pages.", 403)
    value = cookie(dict(request.headers), sessions.COOKIE)
    if value:
        resolved = sessions.resolve(door.store, value, now=door.wall(), source=source)
        if sessions.end(door.store, value) and resolved is not None:
            who = resolved.principal
            audit.record(
                door.store,
                at=door.clock.now(),
                actor=who.actor,
                action="auth.logout",
                target="session",
                source=source,
                result="ok",
                tenant=who.tenant,
            )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    response.delete_cookie(sessions.CSRF_COOKIE, path="/")
    return response


def _token_expiry(door: Door, principal: Principal) -> datetime | None:
    """A session logged in with a token ends when the token does."""
    kind, _, id_ = principal.subject.partition(":")
    if kind != "token" or not id_.isdigit():
        return None
    record = identities.token(door.store, int(id_))
    return record.expires_at if record is not None else None
