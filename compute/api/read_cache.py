"""Answers that are costly to build and read by many: built at most once per ``ttl`` in a
process, as the JSON bytes sent, and built again off the requests' path.

The fleet overview reads every node of the site (0.085 s of CPU at 10,240 nodes reading
summaries and no allocations, 0.45 s before) and every open page asks for it every 3 s:
under load, building it for each asker was a fifth of the API's CPU. It is kept
OVERVIEW_SECONDS, or longer where building it takes longer (at most OVERVIEW_SHARE of a
process's time goes to building it). Once that has passed, the next asker starts a build on
a thread of its own and is answered the copy kept, as are all askers until the new one is
ready: no request waits for a build but the first (and one whose copy is more than
STALE_SECONDS past its time, should builds fail or lag).
The request that found the copy stale used to build it itself: at 200 requests/s with two
API workers (benchmarks/api_load_bench.py) the overview's p50 was 3-94 ms and its p99
219-861 ms; with the copy kept sent, 2.2-2.7 and 86-143 ms.

So a page shows the fleet as it was at most OVERVIEW_SECONDS (or the build's time over
OVERVIEW_SHARE) plus one build ago, and never more than STALE_SECONDS more than that (its
``now`` says when): ~2.2 s at 1,024 nodes, ~12 s at 10,240 on this project's 2-core test
machine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from pydantic_core import to_json

log = logging.getLogger("computectl")

OVERVIEW_SECONDS = 2.0
OVERVIEW_SHARE = 0.1
# How long past its time a kept answer is still sent while the next one is built.
STALE_SECONDS = 10.0


def _thread(run: Callable[[], None]) -> None:
    threading.Thread(target=run, name="computectl-read-cache", daemon=True).start()


class Fresh:
    """One answer per key, built again once older than ``ttl``. Until the first build of a
    key is done, askers wait for it (one build, not one each); later ones are answered the
    copy kept while a build started by the first asker to find it stale runs on its own
    thread (``spawn``)."""

    def __init__(
        self,
        ttl: float,
        share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        stale: float = STALE_SECONDS,
        spawn: Callable[[Callable[[], None]], None] = _thread,
    ) -> None:
        """Kept ``ttl``, or ``1/share`` times as long as the build took if that is longer;
        sent up to ``stale`` past that while the next is built."""
        self.ttl, self.share, self.clock, self.stale, self.spawn = ttl, share, clock, stale, spawn
        self._kept: dict[Hashable, tuple[bytes, float]] = {}
        self._builders: dict[Hashable, Callable[[], dict[str, Any]]] = {}
        self._refreshing: set[Hashable] = set()
        # Not before this again after a build that failed (it is logged; askers get the
        # copy kept until it is too old, then build, and see the error, themselves).
        self._retry_at: dict[Hashable, float] = {}
        self._building = threading.Lock()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> bytes | None:
        """The answer kept if it is fresh, or stale by less than ``stale`` with a build
        started (no waiting: for the event loop); else None (call ``get``)."""
        kept = self._kept.get(key)
        if kept is None:
            return None
        body, until = kept
        now = self.clock()
        if now < until:
            return body
        if now >= until + self.stale or not self._refresh(key, now):
            return None
        return body

    def get(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> bytes:
        """The answer: as ``peek`` gives it, else built here if no one has built it
        meanwhile (blocks: for a worker thread)."""
        self._builders[key] = build
        body = self.peek(key)
        if body is not None:
            return body
        with self._building:
            kept = self._kept.get(key)
            if kept is not None and self.clock() < kept[1]:
                return kept[0]
            return self._build(key, build)

    def _refresh(self, key: Hashable, now: float) -> bool:
        """Whether a build of ``key`` is under way, started here if none was."""
        with self._lock:
            if key in self._refreshing:
                return True
            build = self._builders.get(key)
            if build is None:
                return False
            if now < self._retry_at.get(key, now):
                return True
            self._refreshing.add(key)

        def run() -> None:
            try:
                with self._building:
                    kept = self._kept.get(key)
                    if kept is None or self.clock() >= kept[1]:
                        self._build(key, build)
            except Exception:
                log.exception("building a cached answer failed; the one kept is sent")
                self._retry_at[key] = self.clock() + self.ttl
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        self.spawn(run)
        return True

    def _build(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> bytes:
        started = self.clock()
        # As FastAPI sends a route's answer: NaN and infinities as null.
        body = to_json(build(), inf_nan_mode="null")
        took = self.clock() - started
        # Counted from when the build began: the answer is as old as what it read.
        self._kept = {key: (body, started + max(self.ttl, took / self.share))}
        return body
