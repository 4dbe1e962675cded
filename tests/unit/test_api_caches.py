"""The API's caches: tokens verified a moment ago, and answers built at most once a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.api.read_cache import Fresh
from compute.services.token_cache import VerifiedTokens
from compute.store.identities import TokenRecord

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def record(id_: int = 1, expires: datetime | None = None, revoked: bool = False) -> TokenRecord:
    return TokenRecord(
        id=id_, name="ci", prefix="abcdefgh", role="viewer", tenant=None, node=None,
        created_at=NOW, created_by="local:root", expires_at=expires, last_used_at=None,
        revoked_at=NOW if revoked else None,
    )  # fmt: skip


def test_a_verified_token_is_taken_for_its_ttl_only() -> None:
    clock = Ticks()
    cache = VerifiedTokens(ttl=5.0, clock=clock)
    assert cache.get("d", NOW) is None
    cache.put("d", record(), cache.generation)
    assert cache.get("d", NOW) == record()
    clock.t = 4.9
    assert cache.get("d", NOW) is not None
    clock.t = 5.0  # a revocation elsewhere is seen from here on
    assert cache.get("d", NOW) is None


def test_expiry_is_checked_on_every_hit_and_revoked_ones_are_never_kept() -> None:
    cache = VerifiedTokens(clock=Ticks())
    cache.put("d", record(expires=NOW + timedelta(seconds=1)), 0)
    assert cache.get("d", NOW) is not None
    assert cache.get("d", NOW + timedelta(seconds=1)) is None
    cache.put("r", record(revoked=True), 0)
    assert cache.get("r", NOW) is None


def test_forget_drops_everything() -> None:
    cache = VerifiedTokens(clock=Ticks())
    cache.put("a", record(1), 0)
    cache.put("b", record(2), 0)
    cache.forget()
    assert cache.get("a", NOW) is None and cache.get("b", NOW) is None


def test_a_verification_read_before_a_forget_is_not_kept() -> None:
    cache = VerifiedTokens(clock=Ticks())
    read_at = cache.generation  # a lookup in the store begins...
    cache.forget()  # ...a revocation is committed meanwhile...
    cache.put("d", record(), read_at)  # ...and what the lookup read is not kept
    assert cache.get("d", NOW) is None
    cache.put("d", record(), cache.generation)
    assert cache.get("d", NOW) is not None


@given(st.lists(st.text(min_size=1, max_size=8), max_size=60), st.integers(1, 10))
def test_the_cache_is_bounded(digests: list[str], bound: int) -> None:
    cache = VerifiedTokens(max_tokens=bound, clock=Ticks())
    for i, d in enumerate(digests):
        cache.put(d, record(i), 0)
    assert sum(cache.get(d, NOW) is not None for d in set(digests)) <= bound
    if digests:  # the newest is always there
        assert cache.get(digests[-1], NOW) is not None


def test_an_answer_is_built_once_per_ttl() -> None:
    clock = Ticks()
    built: list[int] = []
    started: list[Callable[[], None]] = []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"n": len(built), "x": float("nan")}

    fresh = Fresh(2.0, clock=clock, spawn=started.append)
    assert fresh.peek("k") is None
    assert fresh.get("k", build) == b'{"n":1,"x":null}'  # NaN as FastAPI sends it
    assert fresh.peek("k") == fresh.get("k", build) == b'{"n":1,"x":null}'
    clock.t = 2.0
    # Stale: the copy kept is sent while one build runs off the askers' path.
    assert fresh.peek("k") == fresh.get("k", build) == b'{"n":1,"x":null}'
    assert len(started) == 1 and len(built) == 1
    started.pop()()
    assert fresh.peek("k") == b'{"n":2,"x":null}'
    assert fresh.get("other", build) == b'{"n":3,"x":null}'  # another key, built anew


def test_a_copy_too_stale_is_not_sent() -> None:
    clock = Ticks()
    built: list[int] = []
    started: list[Callable[[], None]] = []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"n": len(built)}

    fresh = Fresh(2.0, clock=clock, stale=10.0, spawn=started.append)
    fresh.get("k", build)
    clock.t = 11.9
    assert fresh.peek("k") == b'{"n":1}'  # a build started, not finished
    clock.t = 12.0
    assert fresh.peek("k") is None
    assert fresh.get("k", build) == b'{"n":2}'  # the asker builds it


def test_a_failed_refresh_keeps_the_copy_and_waits_before_trying_again() -> None:
    clock = Ticks()
    started: list[Callable[[], None]] = []
    fail = [False]

    def build() -> dict[str, Any]:
        if fail[0]:
            raise RuntimeError("store away")
        return {"ok": True}

    fresh = Fresh(2.0, clock=clock, spawn=started.append)
    fresh.get("k", build)
    fail[0] = True
    clock.t = 2.0
    assert fresh.peek("k") == b'{"ok":true}'
    started.pop()()  # fails, logged
    clock.t = 3.0
    assert fresh.peek("k") == b'{"ok":true}' and not started  # no retry within the ttl
    clock.t = 4.0
    assert fresh.peek("k") == b'{"ok":true}' and len(started) == 1
    clock.t = 12.0
    with pytest.raises(RuntimeError):
        fresh.get("k", build)  # too stale: the asker builds it, and sees why it fails


def test_a_refresh_on_a_thread_replaces_the_copy() -> None:
    clock = Ticks()
    built: list[int] = []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"n": len(built)}

    fresh = Fresh(2.0, clock=clock)
    fresh.get("k", build)
    clock.t = 2.0
    assert fresh.peek("k") == b'{"n":1}'
    deadline = time.monotonic() + 5
    while fresh.peek("k") != b'{"n":2}' and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fresh.peek("k") == b'{"n":2}'


def test_a_slow_build_is_kept_longer() -> None:
    clock = Ticks()
    started: list[Callable[[], None]] = []

    def build() -> dict[str, Any]:
        clock.t += 1.0  # a build of 1 s, at most a tenth of the time: kept 10 s
        return {}

    fresh = Fresh(2.0, share=0.1, clock=clock, spawn=started.append)
    fresh.get("k", build)
    clock.t = 9.9
    assert fresh.peek("k") is not None and not started
    clock.t = 10.0
    assert fresh.peek("k") is not None and len(started) == 1  # stale: built anew


def test_askers_at_once_wait_for_one_build() -> None:
    built: list[int] = []

    def build() -> dict[str, Any]:
        built.append(1)
        time.sleep(0.05)
        return {"ok": True}

    fresh = Fresh(60.0)
    threads = [threading.Thread(target=fresh.get, args=("k", build)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
