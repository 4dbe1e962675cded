"""The OIDC client's two kinds of request to the provider: GET a JSON document, POST a
form and read a JSON answer. Stdlib urllib, a timeout on each, answers capped in size,
and no redirects followed: a provider's endpoints are named in its discovery document,
and a redirect from one of them is an error, not a new place to send the client secret.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode

MAX_ANSWER_BYTES = 1024 * 1024


class OidcError(Exception):
    """The provider could not be used (unreachable, or it answered something unusable)."""


class Refused(OidcError):
    """The provider answered 4xx: it understood and said no (a used or unknown code)."""


class Http(Protocol):
    def get_json(self, url: str) -> Any: ...

    def post_form(
        self, url: str, form: Mapping[str, str], *, basic: tuple[str, str] | None = None
    ) -> Any: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx


def _json(data: bytes, url: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OidcError(f"{url} did not answer JSON") from None


class UrllibHttp:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def _fetch(self, request: urllib.request.Request) -> bytes:
        url = request.full_url
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                data: bytes = answer.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as e:
            kind = Refused if 400 <= e.code < 500 else OidcError
            raise kind(f"{url} answered HTTP {e.code}{_oauth_error(e)}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise OidcError(f"{url} could not be reached: {reason}") from None
        if len(data) > MAX_ANSWER_BYTES:
            raise OidcError(f"{url} answered more than {MAX_ANSWER_BYTES} bytes")
        return data

    def get_json(self, url: str) -> Any:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        return _json(self._fetch(request), url)

    def post_form(
        self, url: str, form: Mapping[str, str], *, basic: tuple[str, str] | None = None
    ) -> Any:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if basic is not None:
            # RFC 6749 2.3.1: the client ID and secret are form-encoded before base64.
            pair = f"{quote(basic[0], safe='')}:{quote(basic[1], safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        request = urllib.request.Request(
            url, data=urlencode(form).encode(), headers=headers, method="POST"
        )
        return _json(self._fetch(request), url)


def _oauth_error(e: urllib.error.HTTPError) -> str:
    """The OAuth error code of a refused request (RFC 6749 5.2), if it sent one."""
    try:
        body = json.loads(e.read(4096).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return f" ({code})" if isinstance(code, str) and code.isprintable() and len(code) < 64 else ""
