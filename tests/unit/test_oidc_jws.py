"""RS256 ID token signatures and JWK Sets (compute.auth.jws): what verifies and what not."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.auth import jws
from tests.unit.oidc_keys import D1, D2, N1, N2, jwk, make_jwt, public, sign

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = (public(N1, "k1"), public(N2, "k2"))
ALICE = make_jwt({"sub": "alice"})  # signing takes a while: once


def test_a_token_signed_by_a_key_of_the_set_verifies() -> None:
    token = make_jwt({"sub": "alice"}, kid="k1")
    assert jws.verify(token, KEYS) == {"sub": "alice"}
    assert jws.verify(make_jwt({"sub": "bob"}, n=N2, d=D2, kid="k2"), KEYS) == {"sub": "bob"}
    # A token that names no key is tried against each.
    assert jws.verify(make_jwt({"sub": "carol"}, n=N2, d=D2, kid=None), KEYS)["sub"] == "carol"


def test_a_changed_payload_or_another_key_does_not_verify() -> None:
    token = make_jwt({"sub": "alice", "groups": ["viewers"]})
    head, _, sig = token.split(".")
    forged = jws.b64url_encode(json.dumps({"sub": "alice", "groups": ["operators"]}).encode())
    with pytest.raises(jws.InvalidToken, match="signature"):
        jws.verify(f"{head}.{forged}.{sig}", KEYS)
    # Signed by key 2 but claiming key 1.
    with pytest.raises(jws.InvalidToken, match="signature"):
        jws.verify(make_jwt({"sub": "x"}, n=N2, d=D2, kid="k1"), KEYS)
    with pytest.raises(jws.InvalidToken, match="no key"):
        jws.verify(make_jwt({"sub": "x"}, kid="k9"), KEYS)


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "ES256", "PS256", None, 1])
def test_only_rs256_is_accepted(alg: object) -> None:
    head = jws.b64url_encode(json.dumps({"alg": alg, "kid": "k1"}).encode())
    body = jws.b64url_encode(b'{"sub":"alice"}')
    with pytest.raises(jws.InvalidToken, match="only RS256"):
        jws.verify(f"{head}.{body}.", KEYS)


def test_critical_extensions_are_refused() -> None:
    with pytest.raises(jws.InvalidToken, match="critical"):
        jws.verify(make_jwt({"sub": "a"}, crit=["b64"]), KEYS)


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.e30", "W10.e30.", "e30=.e30.", "x" * 20000],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(jws.InvalidToken):
        jws.verify(token, KEYS)


@FAST
@given(st.text(max_size=300))
def test_any_text_is_a_token_or_invalid_never_a_crash(token: str) -> None:
    with pytest.raises(jws.InvalidToken):
        jws.verify(token, KEYS)


@FAST
@given(st.binary(min_size=0, max_size=300))
def test_any_signature_bytes_for_a_real_payload_do_not_verify(sig: bytes) -> None:
    head, body, _ = ALICE.split(".")
    with pytest.raises(jws.InvalidToken):
        jws.verify(f"{head}.{body}.{jws.b64url_encode(sig)}", KEYS)


def test_a_signature_of_the_modulus_length_but_at_or_above_it_is_refused() -> None:
    key = public(N1)
    size = key.size
    assert not jws.rs256_verifies(key, b"x", N1.to_bytes(size, "big"))
    assert not jws.rs256_verifies(key, b"x", b"\xff" * size)
    assert jws.rs256_verifies(key, b"x", sign(N1, D1, b"x"))


def test_key_sets_keep_rsa_signing_keys_only() -> None:
    keys = jws.parse_jwks(
        {
            "keys": [
                jwk(N1, "k1"),
                jwk(N2, "enc", use="enc"),
                jwk(N2, "ps", alg="PS256"),
                {"kty": "EC", "kid": "ec", "crv": "P-256"},
                "junk",
            ]
        }
    )
    assert keys == (public(N1, "k1"),)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"keys": "x"},
        {"keys": [{**jwk(N1, "k"), "n": jws.b64url_encode((2**1023 + 1).to_bytes(128, "big"))}]},
        {"keys": [{**jwk(N1, "k"), "e": jws.b64url_encode(b"\x02")}]},
        {"keys": [{**jwk(N1, "k"), "n": "not base64!"}]},
        {"keys": [{**jwk(N1, "k"), "kid": 5}]},
        {"keys": [jwk(N1, f"k{i}") for i in range(jws.MAX_KEYS + 1)]},
    ],
)
def test_unsound_key_sets_are_refused(doc: object) -> None:
    with pytest.raises(jws.InvalidToken):
        jws.parse_jwks(doc)


def test_an_unknown_kid_is_the_cue_to_refetch() -> None:
    assert jws.kid_is_known(make_jwt({}, kid="k2"), KEYS)
    assert not jws.kid_is_known(make_jwt({}, kid="k3"), KEYS)
    assert jws.kid_is_known(make_jwt({}, kid=None), KEYS)
