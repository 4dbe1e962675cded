"""A serving process's collector, once it has started (compute/gc_pauses.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from compute import gc_pauses


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, afterwards."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_what_start_up_made_is_out_of_the_collectors_reach() -> None:
    kept = [{"n": i} for i in range(1000)]  # lives as long as the process, as start-up's
    _, older, oldest = gc.get_threshold()
    gc_pauses.settle()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (gc_pauses.YOUNG_THRESHOLD, older, oldest)
    # Frozen objects are still freed by reference counting.
    made = [object()]
    del made
    assert gc.isenabled()
