"""The garbage collector of a serving process, set once it has started.

CPython's full collection walks every tracked object the process holds: after start-up
that is the framework, SQLAlchemy's and pydantic's schemas, the routes (and in the acting
process the simulated world), hundreds of thousands of objects that live as long as the
process. Under load (benchmarks/api_load_bench.py --probe, 200 requests/s, 2 API workers on
1,024 nodes) each worker ran 3-6 full collections a minute of 109-380 ms, and the acting
process 2 of 150-745 ms (one inside a sweep's write transaction, the reports queued behind
it), during which no request of that process moved: the requests due then were the tail.

``settle()`` moves what the process holds after start-up out of the collector's reach
(gc.freeze: still freed by reference counting, never scanned again) and collects the
young generation less often, so a full collection walks only what was made since.
"""

from __future__ import annotations

import gc

# Allocations (less deallocations) of tracked objects between young collections: CPython's
# 700 ran one every ~12 requests; at 10,000 one every few hundred, ~3-4 ms each under load.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect once, then freeze what survived and raise the young generation's
    threshold: call when the process has started and before it serves."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
