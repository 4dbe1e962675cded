"""Answers that are costly to build and read by many: built at most once per ``ttl`` in a
process, as the JSON bytes sent.

The fleet overview reads every node of the site (~90 ms of CPU at 1,024 nodes, ten times
that at 10,240) and every open page asks for it every 3 s: under load, building it for each
asker was a fifth of the API's CPU. It is kept OVERVIEW_SECONDS, or longer where building it
takes longer (at most OVERVIEW_SHARE of a process's time goes to building it), so a page
shows the fleet as it was at most that long ago (its ``now`` says when): 2 s at 1,024 nodes,
~10 s at 10,240 on this project's 2-core test machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from pydantic_core import to_json

OVERVIEW_SECONDS = 2.0
OVERVIEW_SHARE = 0.1


class Fresh:
    """One answer per key, built again once older than ``ttl``; while one thread builds it,
    the others asking for it wait for that one instead of building their own."""

    def __init__(
        self, ttl: float, share: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Kept ``ttl``, or ``1/share`` times as long as the build took if that is longer."""
        self.ttl, self.share, self.clock = ttl, share, clock
        self._kept: dict[Hashable, tuple[bytes, float]] = {}
        self._building = threading.Lock()

    def peek(self, key: Hashable) -> bytes | None:
        """The answer if it is fresh (no waiting: for the event loop), else None."""
        kept = self._kept.get(key)
        return kept[0] if kept is not None and self.clock() < kept[1] else None

    def get(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> bytes:
        """The fresh answer, built here if no one has built it meanwhile (blocks: for a
        worker thread)."""
        with self._building:
            kept = self.peek(key)
            if kept is not None:
                return kept
            started = self.clock()
            # As FastAPI sends a route's answer: NaN and infinities as null.
            body = to_json(build(), inf_nan_mode="null")
            took = self.clock() - started
            # Counted from when the build began: the answer is as old as what it read.
            self._kept = {key: (body, started + max(self.ttl, took / self.share))}
            return body
