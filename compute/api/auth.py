"""The front door: who is asking (a bearer token, another verifier's credential, or a
session cookie with its CSRF header), whether the one authorization table lets them
(compute/auth/policy.py), and the audit of what was refused or failed.

One dependency installed on the app, so every route has it, the included routers' too; the
app serves its OpenAPI document and docs page as routes of its own for the same reason. It
decides on the route's path template (``path_format``), so "/api/v1/nodes/{name}/health"
has one rule whichever node is named. Routes get the principal and the audit actor from
compute/api/deps.py.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from compute.auth import tokens as fmt
from compute.auth.policy import (
    UNSAFE_METHODS,
    Forbidden,
    Policy,
    Rule,
    TooManyFailures,
    Unauthenticated,
    Verdict,
)
from compute.auth.policy import Scope as RuleScope
from compute.auth.principal import Principal
from compute.clock import Clock
from compute.errors import ComputeError
from compute.services import audit, sessions
from compute.services import tokens as token_service
from compute.services.token_cache import VerifiedTokens
from compute.store import Store
from compute.validation import first_error

PRINCIPAL_KEY = "computectl.principal"
ANONYMOUS = "anonymous"
# Changes that cannot revoke a credential: the front door keeps the tokens it verified a
# moment ago after these (any other change forgets them: it may have revoked one).
KEEPS_VERIFIED = frozenset({("POST", "/api/v1/nodes/{name}/health")})
# A verifier of credentials that are not computectl tokens (the Kubernetes TokenReview of a
# node's ServiceAccount token): the principal, or None if the credential is not its kind.
# It raises Unauthenticated for one of its kind that it refuses.
Verifier = Callable[[str, str], Principal | None]


class FailureLimiter:
    """Failed logins per source address in a sliding window; past ``limit`` the source is
    refused (429) until its oldest failure leaves the window. Bounded in memory: the
    sources seen longest ago are forgotten first."""

    def __init__(self, limit: int = 20, window: float = 60.0, max_sources: int = 10_000) -> None:
        self.limit, self.window, self.max_sources = limit, window, max_sources
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, source: str, now: float) -> float:
        """Seconds until ``source`` may try again (0: now)."""
        with self._lock:
            seen = self._trimmed(source, now)
            if seen is None or len(seen) < self.limit:
                return 0.0
            return max(seen[0] + self.window - now, 1.0)

    def fail(self, source: str, now: float) -> bool:
        """Count a failure; True if it is the one that reached the limit."""
        with self._lock:
            seen = self._trimmed(source, now)
            if seen is None:
                while len(self._failures) >= self.max_sources:
                    del self._failures[next(iter(self._failures))]
                seen = self._failures[source] = deque(maxlen=self.limit)
            seen.append(now)
            return len(seen) == self.limit

    def _trimmed(self, source: str, now: float) -> deque[float] | None:
        seen = self._failures.get(source)
        if seen is None:
            return None
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if not seen:
            del self._failures[source]
            return None
        return seen


@dataclass
class Door:
    """What the front door needs, built once at start-up (on app.state.door)."""

    store: Store
    clock: Clock  # the audit trail's time (the control plane's clock)
    policy: Policy
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    verifiers: list[Verifier] = field(default_factory=list)
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Tokens verified a moment ago (compute/services/token_cache.py: a revocation made
    # elsewhere reaches this process within its ttl).
    verified: VerifiedTokens = field(default_factory=VerifiedTokens)

    def authenticate(self, credential: str, source: str) -> Principal:
        """The principal of a bearer credential; Unauthenticated if none accepts it."""
        if credential.startswith(f"{fmt.SCHEME}_"):
            return token_service.authenticate(
                self.store, credential, now=self.wall(), source=source, verified=self.verified
            )
        for verify in self.verifiers:
            principal = verify(credential, source)
            if principal is not None:
                return principal
        raise Unauthenticated("not a credential this control plane accepts")

    def failed_login(self, source: str, reason: str, target: str) -> None:
        """Audit a failed login and count it against its source."""
        crossed = self.limiter.fail(source, self.wall().timestamp())
        result = f"refused: {reason}" + (
            "; further attempts refused for a while" if crossed else ""
        )
        audit.record(
            self.store,
            at=self.clock.now(),
            actor=ANONYMOUS,
            action="auth.login",
            target=target,
            source=source,
            result=result,
        )

    def retry_after(self, source: str) -> float:
        return self.limiter.retry_after(source, self.wall().timestamp())

    def verified_principal(self, headers: dict[str, str], source: str) -> Principal | None:
        """The principal of a bearer token verified a moment ago, without the store (so on
        the event loop); None: the full path decides (on a worker thread)."""
        header = headers.get("authorization")
        credential = fmt.bearer(header) if header is not None else None
        presented = fmt.parse(credential) if credential is not None else None
        if presented is None:
            return None
        found = self.verified.get(presented.digest, self.wall())
        return token_service.principal_of(found, source) if found is not None else None


def source_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        # The first of a repeated header; latin-1 as HTTP/1.1 carries them.
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def cookie(headers: dict[str, str], name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


async def front_door(request: Request) -> AsyncIterator[None]:
    """THE dependency, installed on the app (every route, the included routers' too): who
    is asking, may they, and the audit of a change that was refused or failed.

    Async, with the store's work (the credential's lookup, an audit row) on a worker thread
    only where there is some: a sync generator dependency costs two thread hops on every
    request, a public one's too."""
    scope = request.scope
    door: Door = request.app.state.door
    route = scope.get("route")
    template = getattr(route, "path_format", None) or "?"
    params = {k: str(v) for k, v in request.path_params.items()}
    method = request.method
    rule = door.policy.rule(method, template)
    if rule is not None and rule.public:
        yield
        return
    source = source_of(scope)
    unsafe = method in UNSAFE_METHODS
    headers = _headers(scope)
    principal: Principal | None = None
    csrf_ok = True
    if "authorization" in headers:
        principal = door.verified_principal(headers, source)
    if principal is None and ("authorization" in headers or "cookie" in headers):
        principal, csrf_ok = await run_in_threadpool(_principal, door, headers, source, unsafe)
    verdict = door.policy.authorize(principal, method, template, params)
    if verdict.allowed and not csrf_ok:
        verdict = Verdict(403, "a change from a browser session needs its X-CSRF-Token header")
    if not verdict.allowed:
        if verdict.status == 401 and rule is not None and rule.page and method == "GET":
            raise HTTPException(303, "log in first", headers={"Location": "/login"})
        if unsafe:
            if principal is None:
                # Anonymous writes count as failed logins, so a scanner's audit rows are
                # capped; past the cap they are refused unrecorded. A valid credential from
                # the same address is never held back (checked before this).
                _refuse_if_limited(door, source)
                door.limiter.fail(source, door.wall().timestamp())
            why = f"refused: {verdict.status} {verdict.reason}"
            await run_in_threadpool(_record, door, request, principal, rule, params, why)
        if verdict.status == 401:
            raise Unauthenticated(verdict.reason)
        raise Forbidden(verdict.reason)
    scope[PRINCIPAL_KEY] = principal
    forgets = unsafe and (method, template) not in KEEPS_VERIFIED
    if forgets:
        # A change may revoke a token (a revocation, a tenant deleted): this process
        # refuses it from the next request on, whatever it verified before or meanwhile.
        door.verified.forget()
    try:
        yield
    except ComputeError as exc:
        if unsafe:
            word = "failed" if exc.http_status >= 500 else "refused"
            why = f"{word}: {exc.http_status} {exc}"
            await run_in_threadpool(_record, door, request, principal, rule, params, why)
        raise
    except RequestValidationError as exc:
        if unsafe:
            errors = list(exc.errors())
            why = f"refused: 422 {first_error(errors) if errors else 'invalid request'}"
            await run_in_threadpool(_record, door, request, principal, rule, params, why)
        raise
    except Exception:
        if unsafe:
            why = "failed: internal error"
            await run_in_threadpool(_record, door, request, principal, rule, params, why)
        raise
    finally:
        if forgets:
            # And once the change is committed: a verification that read the token before
            # the commit is not kept (compute/services/token_cache.py).
            door.verified.forget()
    if unsafe and rule is not None and rule.record:
        await run_in_threadpool(_record, door, request, principal, rule, params, "ok")


def _principal(
    door: Door, headers: dict[str, str], source: str, unsafe: bool
) -> tuple[Principal | None, bool]:
    """The request's principal (None: no credential) and whether its CSRF check passed
    (a session's unsafe request must send the token). Raises Unauthenticated for a
    credential that is not valid and TooManyFailures while its source is refused."""
    header = headers.get("authorization")
    session_cookie = cookie(headers, sessions.COOKIE) if header is None else None
    if header is None and session_cookie is None:
        return None, True
    # A valid credential always passes, even from an address over the failure limit (many
    # people and nodes can share one address behind a proxy or NAT); only failures are held.
    if header is not None:
        credential = fmt.bearer(header)
        if credential is None:
            _refuse_if_limited(door, source)
            door.failed_login(source, "malformed Authorization header", "credential")
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        try:
            return door.authenticate(credential, source), True
        except Unauthenticated as exc:
            _refuse_if_limited(door, source)
            presented = fmt.parse(credential)
            target = f"token/{presented.prefix}" if presented else "credential"
            door.failed_login(source, str(exc), target)
            raise Unauthenticated("the token is not valid (unknown, expired or revoked)") from None
    assert session_cookie is not None
    resolved = sessions.resolve(door.store, session_cookie, now=door.wall(), source=source)
    if resolved is None:
        _refuse_if_limited(door, source)
        door.failed_login(source, "no such session (logged out or expired)", "session")
        raise Unauthenticated("the session has ended; log in again at /login")
    ok = not unsafe or sessions.csrf_ok(resolved, headers.get(sessions.CSRF_HEADER))
    return resolved.principal, ok


def _refuse_if_limited(door: Door, source: str) -> None:
    """A failure from an address over the limit: 429, and no audit row (a flood of them
    would fill the trail)."""
    wait = door.retry_after(source)
    if wait > 0:
        raise TooManyFailures(
            f"too many failed logins from {source}; try again in {wait:.0f} s", wait
        )


def _record(
    door: Door,
    request: Request,
    principal: Principal | None,
    rule: Rule | None,
    params: dict[str, str],
    result: str,
) -> None:
    tenant = principal.tenant if principal is not None else None
    if tenant is None and rule is not None and rule.scope is RuleScope.TENANT:
        tenant = params.get(rule.param)
    template = getattr(request.scope.get("route"), "path_format", "?")
    audit.record(
        door.store,
        at=door.clock.now(),
        actor=principal.actor if principal is not None else ANONYMOUS,
        action=f"{request.method} {template}",
        target=request.url.path,
        source=source_of(request.scope),
        result=result,
        tenant=tenant,
    )
