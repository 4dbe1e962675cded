"""API tokens' format, parsing and comparison, and the Authorization header's parsing."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.auth import tokens


def test_issued_token_has_its_format_and_only_its_digest_is_kept() -> None:
    t = tokens.issue()
    scheme, prefix, secret = t.plaintext.split("_", 2)
    assert scheme == "cct" and prefix == t.prefix and len(prefix) == 8
    assert len(secret) >= 43  # 32 random bytes, urlsafe base64
    assert t.digest == hashlib.sha256(t.plaintext.encode()).hexdigest()
    assert t.plaintext not in t.digest


def test_tokens_are_unique() -> None:
    made = {tokens.issue().plaintext for _ in range(200)}
    assert len(made) == 200


def test_parse_accepts_ours_and_refuses_the_rest() -> None:
    t = tokens.issue()
    presented = tokens.parse(t.plaintext)
    assert presented is not None and presented.prefix == t.prefix
    assert tokens.same(t.digest, presented)
    other = tokens.parse(tokens.issue().plaintext)
    assert other is not None and not tokens.same(t.digest, other)
    for bad in ("", "cct_", t.plaintext + "x", t.plaintext[:-1], t.plaintext.upper(), "Bearer x"):
        assert tokens.parse(bad) is None


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("Bearer \x00", None),
        ("Bearer é", None),
        ("", None),
        ("Bearer " + "a" * 9000, None),
    ],
)
def test_bearer_header(header: str, credential: str | None) -> None:
    assert tokens.bearer(header) == credential


@given(st.text(max_size=300))
def test_bearer_never_raises_and_returns_printable_ascii(header: str) -> None:
    got = tokens.bearer(header)
    assert got is None or (got.isascii() and got.isprintable() and " " not in got)


@pytest.mark.parametrize(
    ("text", "span"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))],
)
def test_lifetimes(text: str, span: timedelta) -> None:
    assert tokens.parse_lifetime(text) == span


@pytest.mark.parametrize("text", ["", "0d", "30", "d", "-1d", "1w", "9999d", "1.5h"])
def test_bad_lifetimes_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="expires"):
        tokens.parse_lifetime(text)
