"""Figures from events, kept between scrapes so a scrape reads only recent events.

Events are never deleted, so a figure over all of them is the sum of figures over id
ranges. Events up to an id this process saw as the newest at least ``SETTLE_SECONDS`` ago
are settled: counted once and kept. Every scrape reads the events after them. The wait is
for PostgreSQL, where ids are taken when a row is written but become visible at commit: a
transaction still open when a newer id was seen would otherwise be skipped. No transaction
that writes events stays open that long (SQLite writers commit in id order anyway).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from compute.store import Store
from compute.store import metrics_reads as reads
from compute.store.metrics_reads import Histogram, Span

SETTLE_SECONDS = 60.0
# The target is a drain within 2 s of detection: fine buckets below it, coarse above
# (a drain that waited for a sweep lands near the sweep interval).
DETECTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
# From the drain to the node back in service: a burn-in (hours) to a hardware repair (weeks).
REPAIR_BUCKETS = tuple(h * 3600.0 for h in (0.25, 0.5, 1, 2, 4, 8, 12, 24, 48, 96, 168, 336, 720))

K = TypeVar("K")


@dataclass(frozen=True)
class EventFigures:
    detection: Mapping[str, Histogram]
    repair: Mapping[str, Histogram]
    drains: Mapping[tuple[str, str, str], int]
    would: Mapping[tuple[str, str, str], int]
    held: Mapping[str, int]
    kinds: Mapping[tuple[str, str], int]

    @classmethod
    def read(cls, store: Store, span: Span) -> EventFigures:
        return cls(
            reads.detection_to_drain(store, DETECTION_BUCKETS, span),
            reads.time_to_repair(store, REPAIR_BUCKETS, span),
            reads.drain_counts(store, span),
            reads.would_act_counts(store, span),
            reads.held_counts(store, span),
            reads.kind_counts(store, span),
        )

    def plus(self, other: EventFigures) -> EventFigures:
        return EventFigures(
            _merge(self.detection, other.detection),
            _merge(self.repair, other.repair),
            Counter(self.drains) + Counter(other.drains),
            Counter(self.would) + Counter(other.would),
            Counter(self.held) + Counter(other.held),
            Counter(self.kinds) + Counter(other.kinds),
        )


NONE = EventFigures({}, {}, {}, {}, {}, {})


def _add(a: Histogram, b: Histogram) -> Histogram:
    counts = tuple(x + y for x, y in zip(a.counts, b.counts, strict=True))
    return Histogram(counts, a.count + b.count, a.total + b.total)


def _merge(a: Mapping[K, Histogram], b: Mapping[K, Histogram]) -> dict[K, Histogram]:
    out = dict(a)
    for key, h in b.items():
        out[key] = _add(out[key], h) if key in out else h
    return out


class EventTally:
    def __init__(
        self, settle: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settle = settle
        self.clock = clock
        self._lock = threading.Lock()
        self._settled = NONE
        self._upto = 0
        # (when, newest id then), oldest first; one entry per new id seen.
        self._seen: deque[tuple[float, int]] = deque()

    def figures(self, store: Store) -> EventFigures:
        now, newest = self.clock(), reads.last_event_id(store)
        with self._lock:
            if not self._seen or self._seen[-1][1] != newest:
                self._seen.append((now, newest))
            settled_upto = None
            while self._seen and now - self._seen[0][0] >= self.settle:
                settled_upto = self._seen.popleft()[1]
            if settled_upto is not None and settled_upto > self._upto:
                more = EventFigures.read(store, Span(self._upto, settled_upto))
                self._settled, self._upto = self._settled.plus(more), settled_upto
            settled, upto = self._settled, self._upto
        return settled.plus(EventFigures.read(store, Span(upto)))
