"""TokenReview (authentication.k8s.io/v1): the API server says who a bearer token is.

The request body and the reading of the answer; `KubeClient.review_token` sends it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ReviewedToken:
    """An authenticated token's user, as the API server's TokenReview names it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # e.g. authentication.kubernetes.io/pod-name → ("computectl-node-check-x7k2p",)
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The audiences the token is valid for among those asked about.
    audiences: tuple[str, ...] = ()

    def first(self, key: str) -> str:
        """The first value of ``extra[key]`` ("" when absent)."""
        values = self.extra.get(key, ())
        return values[0] if values else ""


def review_body(token: str, audiences: Sequence[str]) -> dict[str, Any]:
    """A TokenReview asking about ``token`` for ``audiences`` (never empty: without them the
    API server checks the token against its own audience, so a token meant for it would
    pass as one meant for computectl)."""
    if not audiences:
        raise ValueError("a token review needs the audiences the token must be valid for")
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": list(audiences)},
    }


def reviewed(answer: Mapping[str, Any]) -> ReviewedToken | None:
    """The user of an authenticated review, None for anything else (not authenticated, or an
    answer that does not have the shape of one)."""
    status = answer.get("status")
    if not isinstance(status, dict) or status.get("authenticated") is not True:
        return None
    user = status.get("user")
    if not isinstance(user, dict):
        return None
    username = user.get("username")
    if not isinstance(username, str) or not username:
        return None
    uid = user.get("uid")
    extra = user.get("extra")
    return ReviewedToken(
        username=username,
        uid=uid if isinstance(uid, str) else "",
        groups=_strings(user.get("groups")),
        extra=(
            {k: _strings(v) for k, v in extra.items() if isinstance(k, str)}
            if isinstance(extra, dict)
            else {}
        ),
        audiences=_strings(status.get("audiences")),
    )


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
