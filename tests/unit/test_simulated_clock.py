"""The simulated clock: read without the world where this process moves time."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from compute.simulation import SimulatedDatacenter
from compute.testing import EPOCH, make_settings


def _dc(tmp_path: Path) -> SimulatedDatacenter:
    settings = make_settings(tmp_path, racks=1, nodes_per_rack=2)
    return SimulatedDatacenter(
        settings.simulation,
        settings.effective_pools,
        tmp_path / "simulation" / "state.json",
        start=EPOCH.timestamp(),
    )


def test_the_holder_that_moves_time_reads_it_while_the_world_is_held(tmp_path: Path) -> None:
    dc = _dc(tmp_path)
    dc.advance(90)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a sweep's telemetry, for as long as it takes
        with dc.session():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        read: list[object] = []
        reader = threading.Thread(target=lambda: read.append(dc.now()))
        reader.start()
        reader.join(5)
        assert read == [EPOCH + timedelta(seconds=90)]
    finally:
        release.set()
        holder.join()


def test_a_holder_that_never_moves_time_reads_it_as_stored(tmp_path: Path) -> None:
    mover, reader = _dc(tmp_path), _dc(tmp_path)
    assert reader.now() == EPOCH
    mover.advance(600)
    assert reader.now() == mover.now() == EPOCH + timedelta(seconds=600)
    mover.advance(60)
    assert reader.now() == EPOCH + timedelta(seconds=660)
