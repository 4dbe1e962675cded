"""Verifying a signed JSON Web Token (JWS compact form, RS256) against a JSON Web Key Set.

Only RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 3.3) is accepted: it is what OpenID
Connect providers must support and what dex signs with. "none", the HMAC algorithms (a
public key used as an HMAC secret) and anything else are refused by name, before any key
is looked at.

The signature is checked the way RFC 8017 8.2.2 prescribes: the expected encoded message
is built from the digest and compared whole with the one the signature opens to, so there
is no ASN.1 to parse and nothing for a forged signature's padding to hide in. That is a
few lines of integer arithmetic, which is why no cryptography library is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A token or key set larger than this is not one a provider sends.
MAX_TOKEN_CHARS = 16 * 1024
MAX_KEYS = 64
MIN_KEY_BITS = 2048
MAX_KEY_BITS = 8192

# DER of DigestInfo's AlgorithmIdentifier for SHA-256, followed by the digest (RFC 8017 9.2).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(ValueError):
    """The token (or key set) is malformed, or its signature does not verify."""


def b64url_decode(value: str) -> bytes:
    """Unpadded base64url (RFC 7515 2); anything else is refused, not skipped over."""
    if _B64URL.fullmatch(value) is None or len(value) % 4 == 1:
        raise InvalidToken("not base64url")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    n: int
    e: int
    kid: str | None = None

    @property
    def size(self) -> int:
        """Length in bytes of the modulus, and so of every signature under this key."""
        return (self.n.bit_length() + 7) // 8


def _int(member: object) -> int:
    if not isinstance(member, str) or not member:
        raise InvalidToken("an RSA key member is missing")
    return int.from_bytes(b64url_decode(member), "big")


def parse_jwks(doc: object) -> tuple[RsaPublicKey, ...]:
    """The RSA signing keys of a JWK Set (RFC 7517 5). Keys of other types, or for
    encryption, are passed over; a key that claims to be an RSA signing key but is not a
    sound one makes the whole set invalid."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
        raise InvalidToken("the key set is not a JSON object with a 'keys' list")
    entries: list[Any] = doc["keys"]
    if len(entries) > MAX_KEYS:
        raise InvalidToken(f"the key set holds {len(entries)} keys; at most {MAX_KEYS}")
    keys: list[RsaPublicKey] = []
    for jwk in entries:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("a key's 'kid' is not a string")
        key = RsaPublicKey(n=_int(jwk.get("n")), e=_int(jwk.get("e")), kid=kid)
        if not MIN_KEY_BITS <= key.n.bit_length() <= MAX_KEY_BITS:
            raise InvalidToken(f"an RSA key has {key.n.bit_length()} bits")
        if key.e < 3 or key.e % 2 == 0 or key.e >= key.n:
            raise InvalidToken("an RSA key has an unsound public exponent")
        keys.append(key)
    return tuple(keys)


def rs256_verifies(key: RsaPublicKey, signing_input: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5-VERIFY with SHA-256 (RFC 8017 8.2.2)."""
    k = key.size
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    opened = pow(s, key.e, key.n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(opened, expected)


@dataclass(frozen=True, slots=True)
class Jws:
    header: Mapping[str, Any]
    signing_input: bytes
    payload: bytes
    signature: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidToken(f"the {what} is not JSON") from e
    if not isinstance(value, dict):
        raise InvalidToken(f"the {what} is not a JSON object")
    return value


def parse_compact(token: str) -> Jws:
    """Split and decode a compact JWS, refusing every algorithm but RS256."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("the token is not a string of a sane length")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("the token is not a compact JWS (three parts)")
    header = _json_object(b64url_decode(parts[0]), "token header")
    alg = header.get("alg")
    if alg != "RS256":
        raise InvalidToken(f"the token is signed with {ascii(alg)[:40]}; only RS256 is accepted")
    if "crit" in header:
        # RFC 7515 4.1.11: extensions this code does not understand must be refused.
        raise InvalidToken("the token names critical header extensions")
    return Jws(
        header=header,
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        payload=b64url_decode(parts[1]),
        signature=b64url_decode(parts[2]),
    )


def verify(token: str, keys: Iterable[RsaPublicKey]) -> dict[str, Any]:
    """The token's claims if one of ``keys`` (those with its 'kid', when it names one)
    verifies its signature; InvalidToken otherwise."""
    jws = parse_compact(token)
    candidates = [k for k in keys if jws.kid is None or k.kid == jws.kid]
    if not candidates:
        raise InvalidToken(f"no key {ascii(jws.kid)[:80]} in the provider's key set")
    if not any(rs256_verifies(k, jws.signing_input, jws.signature) for k in candidates):
        raise InvalidToken("the token's signature does not verify")
    return _json_object(jws.payload, "token payload")


def kid_is_known(token: str, keys: Iterable[RsaPublicKey]) -> bool:
    """Whether ``keys`` hold the key the token names (a token that names none: any key).
    A provider rotates keys: an unknown kid is the cue to fetch the key set again."""
    kid = parse_compact(token).kid
    return any(kid is None or k.kid == kid for k in keys)
