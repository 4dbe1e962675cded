"""Tokens this process verified a moment ago, so that a client sending many requests does
not cost a store lookup on each one (under load the lookup was a tenth of a request's CPU).

What is cached is the token's record as the store had it, found by the presented token's
digest (never the token itself); a failed verification is never cached. A hit is still
checked against the token's expiry on every request. A revocation reaches a process that
cached the token within VERIFIED_SECONDS (docs: every replica and API worker refuses a
revoked token within 5 s); the front door forgets everything before and after any change
made through it, so a token revoked through one process is refused by that process at once.
A verification that read the store before a forget is not kept (``generation``): it may
have read the token just before its revocation was committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from compute.store.identities import TokenRecord

# How long a verified token is taken at its word without asking the store again: the bound
# on how long a token revoked elsewhere (another replica, an API worker, the CLI) still works.
VERIFIED_SECONDS = 5.0
MAX_TOKENS = 10_000


class VerifiedTokens:
    def __init__(
        self,
        ttl: float = VERIFIED_SECONDS,
        max_tokens: int = MAX_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.max_tokens, self.clock = ttl, max_tokens, clock
        self._found: dict[str, tuple[TokenRecord, float]] = {}
        self._lock = threading.Lock()
        # Counts forgets: read before a lookup in the store, compared when it is kept.
        self.generation = 0

    def get(self, digest: str, now: datetime) -> TokenRecord | None:
        """The record of a token verified within the ttl that has not expired by ``now``
        (the wall clock), else None: ask the store."""
        found = self._found.get(digest)
        if found is None:
            return None
        record, until = found
        if self.clock() >= until:
            with self._lock:
                if self._found.get(digest) is found:
                    del self._found[digest]
            return None
        if record.expires_at is not None and record.expires_at <= now:
            return None
        return record

    def put(self, digest: str, record: TokenRecord, generation: int) -> None:
        """Keep ``record``, read from the store when the cache was at ``generation``
        (nothing is kept if it has forgotten since)."""
        if record.revoked_at is not None:
            return
        with self._lock:
            if generation != self.generation:
                return
            self._found.pop(digest, None)
            while len(self._found) >= self.max_tokens:
                del self._found[next(iter(self._found))]
            self._found[digest] = (record, self.clock() + self.ttl)

    def forget(self) -> None:
        with self._lock:
            self.generation += 1
            self._found.clear()
