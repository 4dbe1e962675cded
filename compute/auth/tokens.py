"""API tokens: ``cct_<prefix>_<secret>``, shown once, stored only as a digest.

The prefix (8 of [a-z0-9]) is stored in clear to find the row and to show in listings; the
secret is 32 random bytes. A token is 256 bits of randomness, so an unsalted fast hash
(sha256) is right: there is nothing to guess a dictionary from, and a lookup costs one hash.
Digests are compared in constant time all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

SCHEME = "cct"
PREFIX_LEN = 8
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
SECRET_BYTES = 32
# token_urlsafe(32) gives 43 characters; anything far from that is not ours.
_TOKEN = re.compile(r"cct_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")
# A bearer credential longer than this is refused before anything looks at it.
MAX_CREDENTIAL = 8192
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x7e]+) *")
_SPAN = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LIFETIME = timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class Issued:
    """A new token: ``plaintext`` is shown once and never stored."""

    plaintext: str
    prefix: str
    digest: str


@dataclass(frozen=True, slots=True)
class Presented:
    """A well-formed token as a client presented it: what the lookup needs."""

    prefix: str
    digest: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue() -> Issued:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LEN))
    plaintext = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return Issued(plaintext=plaintext, prefix=prefix, digest=digest(plaintext))


def parse(token: str) -> Presented | None:
    """The token's prefix and digest, or None if it is not one of ours."""
    m = _TOKEN.fullmatch(token)
    if m is None:
        return None
    return Presented(prefix=m.group(1), digest=digest(token))


def same(stored_digest: str, presented: Presented) -> bool:
    return hmac.compare_digest(stored_digest.encode(), presented.digest.encode())


def bearer(header: str) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header, or None if the
    header is anything else (another scheme, empty, several credentials, too long)."""
    if len(header) > MAX_CREDENTIAL:
        return None
    m = _BEARER.fullmatch(header)
    return m.group(1) if m else None


def parse_lifetime(text: str) -> timedelta:
    """ "30d", "12h", "90m", "3600s": how long a token lives (1 s to 3650 days).
    Raises ValueError with one line saying why."""
    m = _SPAN.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expires: {text[:40]!r} is not a duration such as 3600s, 90m, 12h or 30d")
    span = timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])
    if span > MAX_LIFETIME:
        raise ValueError(f"expires: {text} is longer than {MAX_LIFETIME.days} days")
    return span
