"""The control plane's lease (compute/store/leases.py) and who may act (Leadership)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.services.leadership import LEASE, Leadership
from compute.store import Store, leases


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'lease.db'}")
    yield s
    s.close()


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_one_holder_at_a_time_and_a_new_holder_bumps_the_epoch(store: Store) -> None:
    e = store.engine
    first = leases.acquire(e, "cp", "a", 0.2)
    assert first is not None and (first.holder, first.epoch) == ("a", 1)
    assert leases.acquire(e, "cp", "b", 0.2) is None
    again = leases.acquire(e, "cp", "a", 0.2)  # ours: taken again, same epoch
    assert again is not None and again.epoch == 1 and again.acquired_at == first.acquired_at
    renewed = leases.renew(e, "cp", "a", 1, 0.2)
    assert renewed is not None and renewed.expires_at >= again.expires_at
    time.sleep(0.25)
    taken = leases.acquire(e, "cp", "b", 0.2)
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    # The old holder can neither renew nor release what is no longer its.
    assert leases.renew(e, "cp", "a", 1, 0.2) is None
    assert not leases.release(e, "cp", "a", 1)
    assert leases.release(e, "cp", "b", 2)
    # Released: free at once, no waiting for the ttl.
    after = leases.acquire(e, "cp", "a", 60)
    assert after is not None and after.epoch == 3
    seen = leases.current(e, "cp")
    assert seen is not None and seen.holder == "a" and 59 < seen.remaining_seconds <= 60


def test_acting_stops_a_margin_before_the_lease_can_be_taken(store: Store) -> None:
    ticks = Ticks()
    lead = Leadership(store, holder="a", ttl=15.0, clock=ticks)
    assert not lead.acting()
    assert lead.try_acquire() and lead.acting() and lead.epoch == 1
    ticks.t += 15.0 - lead.margin - 0.01
    assert lead.acting()
    ticks.t += 0.02  # a renewal overdue: quiet, by our own clock, before the store's expiry
    assert not lead.acting()
    assert lead.renew() and lead.acting()
    other = Leadership(store, holder="b", ttl=15.0, clock=ticks)
    assert not other.try_acquire() and not other.acting()
    assert "a holds the lease until" in other.refusal()
    assert other.role().startswith("following a")
    lead.release()
    assert not lead.acting()
    assert other.try_acquire() and other.epoch == 2
    # The old holder finds out at its next renewal, and does not act.
    assert not lead.renew() and not lead.acting()
    state = other.state()
    assert state.leading and state.leader == "b" and state.epoch == 2


def test_a_follower_wakes_when_the_leaders_lease_runs_out(store: Store) -> None:
    lead = Leadership(store, holder="a", ttl=0.6)
    follower = Leadership(store, holder="b", ttl=0.6)
    assert lead.step() == pytest.approx(0.2)
    wait = follower.step()
    assert not follower.acting() and 0.05 <= wait <= 0.2


def test_keep_renews_until_stopped_then_releases(store: Store) -> None:
    lead = Leadership(store, holder="a", ttl=1.0)
    stop = threading.Event()
    keeper = threading.Thread(target=lead.keep, args=(stop,))
    keeper.start()
    try:
        time.sleep(1.5)  # longer than the ttl: renewed all along
        assert lead.acting()
        assert not Leadership(store, holder="b", ttl=1.0).try_acquire()
    finally:
        stop.set()
        keeper.join()
    assert not lead.acting()
    assert Leadership(store, holder="b", ttl=1.0).try_acquire()


def test_on_sqlite_a_lease_whose_holder_died_on_this_host_is_taken_at_once(store: Store) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = f"{socket.gethostname()}:{gone.pid}:0000"
    assert leases.acquire(store.engine, LEASE, dead, 60) is not None
    lead = Leadership(store, ttl=15)
    assert not lead.try_acquire()
    assert lead.claim() and lead.acting() and lead.epoch == 2
    # A live holder (this very process, say) is never taken from, nor one of another host.
    for holder in (f"{socket.gethostname()}:{os.getpid()}:0000", f"elsewhere:{gone.pid}:0000"):
        now = leases.current(store.engine, LEASE)
        assert now is not None and leases.release(store.engine, LEASE, now.holder, now.epoch)
        assert leases.acquire(store.engine, LEASE, holder, 60) is not None
        other = Leadership(store, ttl=15)
        assert not other.claim() and not other.acting()
