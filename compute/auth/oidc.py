"""OpenID Connect client: the authorization code flow with PKCE, for people logging in.

    url, cookie = client.begin(next_path)      # send the browser to url; keep cookie
    claims, next_path = client.finish(cookie, query_params)   # at the redirect URI
    principal = principal_from_claims(claims, settings, source)

Discovery (``/.well-known/openid-configuration``) is read on the first login and kept;
the key set is read then and again when a token names a key it does not hold (rotation).
The login in progress (state, nonce, PKCE verifier) travels in a cookie sealed with a key
derived from the client secret, so any replica sharing the configuration can finish it.

Everything the provider and the browser send is hostile until checked here: the
discovery document's issuer must be the configured one, the ID token's signature must
verify (RS256, its key in the provider's set), and its issuer, audience, times and nonce
must be the expected ones. Stdlib only (urllib); see compute.auth.jws for the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from compute.auth import jws
from compute.auth.oidc_http import Http, OidcError, Refused, UrllibHttp
from compute.auth.oidc_settings import OidcSettings, check_url
from compute.auth.principal import Principal

__all__ = [
    "LoginFailed",
    "OidcClient",
    "OidcError",
    "PendingLogin",
    "ProviderMetadata",
    "principal_from_claims",
]

# A rotated-away key is looked for again at most this often, however many tokens name one.
_KEYS_REFRESH_SECONDS = 10.0
_MAX_PARAM = 2048


class LoginFailed(OidcError):
    """This login cannot finish; the message is one line a person may be shown."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    # client_secret_basic unless the provider lists only client_secret_post.
    secret_in_body: bool

    @classmethod
    def from_discovery(cls, doc: object, issuer: str) -> ProviderMetadata:
        if not isinstance(doc, Mapping):
            raise OidcError("the discovery document is not a JSON object")
        if doc.get("issuer") != issuer:
            # OpenID Connect Discovery 1.0, 4.3: they must be identical.
            raise OidcError(
                f"the provider names its issuer {ascii(doc.get('issuer'))[:200]}, not {issuer}"
            )
        urls = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str):
                raise OidcError(f"the discovery document has no {name}")
            try:
                urls[name] = check_url(value, name)
            except ValueError as e:
                raise OidcError(f"the discovery document's {e}") from None
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OidcError("the provider does not support PKCE with S256")
        algs = doc.get("id_token_signing_alg_values_supported")
        if isinstance(algs, list) and "RS256" not in algs:
            raise OidcError("the provider does not sign ID tokens with RS256")
        auth = doc.get("token_endpoint_auth_methods_supported")
        in_body = (
            isinstance(auth, list)
            and "client_secret_basic" not in auth
            and "client_secret_post" in auth
        )
        return cls(issuer=issuer, secret_in_body=in_body, **urls)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login between begin and finish: what only this browser's callback may present."""

    state: str
    nonce: str
    verifier: str
    expires_at: float
    next_path: str = "/"


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 4.2, S256."""
    return jws.b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def safe_next_path(value: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or len(value) > 512
        or not value.isprintable()
    ):
        return "/"
    return value


class OidcClient:
    """One provider, one client registration. Built at start-up and kept on app.state;
    what it learns from the provider (metadata, keys) it keeps under a lock."""

    def __init__(
        self,
        settings: OidcSettings,
        client_secret: str,
        *,
        http: Http | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._secret = client_secret
        self._http = http or UrllibHttp(settings.http_timeout_seconds)
        self._clock = clock
        self._seal_key = hmac.new(
            client_secret.encode(), b"computectl oidc pending login", hashlib.sha256
        ).digest()
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._keys: tuple[jws.RsaPublicKey, ...] = ()
        self._keys_at = float("-inf")

    # -- provider ---------------------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            if self._metadata is None:
                url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                doc = self._http.get_json(url)
                self._metadata = ProviderMetadata.from_discovery(doc, self.settings.issuer)
            return self._metadata

    def _signing_keys(self, token: str) -> tuple[jws.RsaPublicKey, ...]:
        uri = self.metadata().jwks_uri
        with self._lock:
            # Until one fetch has worked, every login tries; after that, a key not in the
            # set is looked for at most every _KEYS_REFRESH_SECONDS.
            never = not self._keys
            unknown = never or not jws.kid_is_known(token, self._keys)
            if never or (unknown and self._clock() - self._keys_at >= _KEYS_REFRESH_SECONDS):
                self._keys_at = self._clock()
                try:
                    self._keys = jws.parse_jwks(self._http.get_json(uri))
                except jws.InvalidToken as e:
                    raise OidcError(f"the provider's key set: {e}") from None
            return self._keys

    # -- the flow ---------------------------------------------------------------------------

    def begin(self, next_path: str | None = None) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the sealed
        pending login to set as a cookie until the browser comes back."""
        s = self.settings
        pending = PendingLogin(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # 64 random bytes -> 86 characters: within RFC 7636's 43-128.
            verifier=secrets.token_urlsafe(64),
            expires_at=self._clock() + s.login_timeout_seconds,
            next_path=safe_next_path(next_path),
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": s.client_id,
                "redirect_uri": s.redirect_uri,
                "scope": " ".join(s.scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pkce_challenge(pending.verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self.metadata().authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", self.seal(pending)

    def finish(self, cookie: str | None, params: Mapping[str, str]) -> tuple[dict[str, Any], str]:
        """The verified ID token claims of the login the browser returns from, and the
        path it started from. LoginFailed for anything amiss (nothing is changed)."""
        pending = self.unseal(cookie)
        if pending is None:
            raise LoginFailed("no login in progress in this browser (or it took too long)")
        error = params.get("error")
        if error is not None:
            raise LoginFailed(f"the provider refused the login: {ascii(error)[:100]}")
        state, code = params.get("state", ""), params.get("code", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise LoginFailed("the login's state does not match this browser's")
        if not code or len(code) > _MAX_PARAM or not code.isprintable():
            raise LoginFailed("the provider sent no usable code")
        id_token = self.exchange(code, pending.verifier)
        return self.verify_id_token(id_token, pending.nonce), pending.next_path

    def exchange(self, code: str, verifier: str) -> str:
        """The authorization code for the ID token (RFC 6749 4.1.3, RFC 7636 4.5)."""
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": verifier,
        }
        basic: tuple[str, str] | None = (self.settings.client_id, self._secret)
        if meta.secret_in_body:
            form |= {"client_id": self.settings.client_id, "client_secret": self._secret}
            basic = None
        try:
            answer = self._http.post_form(meta.token_endpoint, form, basic=basic)
        except Refused as e:
            # A code used twice, run out, or with the wrong verifier: this login's fault.
            raise LoginFailed(f"the provider refused the code: {e}") from None
        if not isinstance(answer, Mapping):
            raise LoginFailed("the provider's token answer is not a JSON object")
        token_type = answer.get("token_type")
        id_token = answer.get("id_token")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise LoginFailed("the provider's token answer is not of type Bearer")
        if not isinstance(id_token, str):
            raise LoginFailed("the provider's token answer holds no ID token")
        return id_token

    def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """OpenID Connect Core 1.0, 3.1.3.7: signature, iss, aud (and azp), exp, iat, nbf,
        nonce."""
        try:
            claims = jws.verify(token, self._signing_keys(token))
        except jws.InvalidToken as e:
            raise LoginFailed(f"the ID token is not valid: {e}") from None
        s = self.settings
        now, skew = self._clock(), s.clock_skew_seconds
        if claims.get("iss") != s.issuer:
            raise LoginFailed("the ID token is from another issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if s.client_id not in audiences:
            raise LoginFailed("the ID token is not for this client")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != s.client_id:
            raise LoginFailed("the ID token was issued to another party")
        exp, iat, nbf = (_time(claims.get(k, 0 if k == "nbf" else None)) for k in _TIMES)
        if now > exp + skew:
            raise LoginFailed("the ID token has expired")
        if iat > now + skew or nbf > now + skew:
            raise LoginFailed("the ID token is not valid yet (check this machine's clock)")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise LoginFailed("the ID token's nonce is not this login's")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise LoginFailed("the ID token names no subject")
        return claims

    # -- the pending login's cookie ---------------------------------------------------------

    def seal(self, pending: PendingLogin) -> str:
        body = json.dumps(
            [pending.state, pending.nonce, pending.verifier, pending.expires_at, pending.next_path],
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(self._seal_key, body, hashlib.sha256).digest()
        return f"{jws.b64url_encode(body)}.{jws.b64url_encode(mac)}"

    def unseal(self, value: str | None) -> PendingLogin | None:
        """The pending login, if the cookie is one this client sealed and it has not run
        out; None otherwise (a stale, foreign or tampered cookie are all the same)."""
        if not value or len(value) > 4096 or value.count(".") != 1:
            return None
        body_part, mac_part = value.split(".")
        try:
            body, mac = jws.b64url_decode(body_part), jws.b64url_decode(mac_part)
        except jws.InvalidToken:
            return None
        want = hmac.new(self._seal_key, body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, want):
            return None
        try:
            # Sealed here, but perhaps by another version of this code: its shape is checked.
            state, nonce, verifier, expires_at, next_path = json.loads(body)
            pending = PendingLogin(state, nonce, verifier, float(expires_at), next_path)
        except (ValueError, TypeError):
            return None
        if not all(isinstance(v, str) for v in (state, nonce, verifier, next_path)):
            return None
        return pending if self._clock() <= pending.expires_at else None


_TIMES = ("exp", "iat", "nbf")


def _time(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**40:
        return float(value)
    raise LoginFailed("the ID token's times are missing or not numbers")


def principal_from_claims(
    claims: Mapping[str, Any], settings: OidcSettings, source: str
) -> Principal:
    """The principal the configuration gives this person: the first [[oidc.groups]] entry
    whose group the token names decides. LoginFailed (nothing granted) if none does, or if
    the token names no usable, verified email."""
    email = claims.get("email")
    if (
        not isinstance(email, str)
        or not 3 <= len(email) <= 254
        or "@" not in email
        or not email.isprintable()
        or any(c.isspace() for c in email)
    ):
        raise LoginFailed("the provider gave no usable email address (ask for scope 'email')")
    if claims.get("email_verified") is False:
        raise LoginFailed(f"{email}: the provider has not verified this email address")
    listed = claims.get(settings.groups_claim)
    groups = {g for g in listed if isinstance(g, str)} if isinstance(listed, list) else set()
    for mapping in settings.groups:
        if mapping.group in groups:
            name = claims.get("name")
            shown = (
                name
                if isinstance(name, str) and 0 < len(name) <= 128 and name.isprintable()
                else email
            )
            return Principal(
                subject=f"oidc:{email}",
                role=mapping.role,
                tenant=mapping.tenant,
                name=shown,
                source=source,
            )
    raise LoginFailed(f"{email} is in none of the groups that computectl lets in")
