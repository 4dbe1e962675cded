"""The loop of `serve`: it sweeps and acts only while this process leads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from compute.loop import Loop


@dataclass
class Report:
    actions: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FakeRuntime:
    """What the loop uses of a Runtime."""

    datacenter: None = None
    attention: threading.Event = field(default_factory=threading.Event)
    sweeps: int = 0
    attended: int = 0

    def sweep(self) -> Report:
        self.sweeps += 1
        return Report()

    def act_on_attention(self) -> int:
        self.attention.clear()  # as Runtime's does, before it looks
        self.attended += 1
        return 0


class Switch:
    """A leadership whose acting() the test sets (no lease, no keeper thread)."""

    def __init__(self) -> None:
        self.on = False
        self.epoch = 0

    def acting(self) -> bool:
        return self.on

    def keep(self, stop: threading.Event) -> None:
        stop.wait()


def _until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_follower_neither_sweeps_nor_acts_and_a_new_leader_sweeps_at_once() -> None:
    rt = FakeRuntime()
    lead = Switch()
    loop = Loop(cast(Any, rt), sweep_interval=3600, acceleration=1, leadership=cast(Any, lead))
    loop.start()
    try:
        rt.attention.set()
        time.sleep(0.6)
        assert (rt.sweeps, rt.attended) == (0, 0)
        lead.on, lead.epoch = True, 1
        # A new leader knows nothing of what happened while it followed: it sweeps first.
        assert _until(lambda: rt.sweeps == 1 and rt.attended >= 1)
        # Attention in a thread of its own: a look every 0.25 s for other replicas' flags.
        seen = rt.attended
        assert _until(lambda: rt.attended >= seen + 2)
        lead.on = False
        time.sleep(0.3)
        quiet = rt.attended
        time.sleep(0.6)
        assert rt.attended == quiet and rt.sweeps == 1
    finally:
        loop.shutdown(5)
    assert not loop.thread.is_alive()


def test_without_leadership_the_loop_acts_alone() -> None:
    rt = FakeRuntime()
    loop = Loop(cast(Any, rt), sweep_interval=3600, acceleration=1)
    loop.start()
    try:
        assert _until(lambda: rt.sweeps == 1)
        rt.attention.set()
        assert _until(lambda: rt.attended >= 1 and not rt.attention.is_set())
    finally:
        loop.shutdown(5)


def test_a_flagged_node_does_not_wait_for_a_running_sweep() -> None:
    class SlowSweep(FakeRuntime):
        def __init__(self) -> None:
            super().__init__()
            self.release = threading.Event()

        def sweep(self) -> Report:
            self.sweeps += 1
            if self.sweeps > 1:  # the first, before any attention, is quick
                self.release.wait(10)
            return Report()

    rt = SlowSweep()
    loop = Loop(cast(Any, rt), sweep_interval=0.5, acceleration=1)
    loop.start()
    try:
        assert _until(lambda: rt.sweeps == 2)
        seen = rt.attended
        rt.attention.set()
        assert _until(lambda: rt.attended > seen, timeout=1.0)
    finally:
        rt.release.set()
        loop.shutdown(5)


def test_a_new_leader_sweeps_before_it_acts_on_attention() -> None:
    """The one before may have drained a node and died before recording it: only a sweep
    of the backends shows that, so attention waits for one under the new epoch."""
    order: list[str] = []

    class Recording(FakeRuntime):
        def sweep(self) -> Report:
            order.append("sweep")
            return super().sweep()

        def act_on_attention(self) -> int:
            order.append("attention")
            return super().act_on_attention()

    rt = Recording()
    lead = Switch()
    lead.on, lead.epoch = True, 1
    rt.attention.set()
    loop = Loop(cast(Any, rt), sweep_interval=3600, acceleration=1, leadership=cast(Any, lead))
    loop.start()
    try:
        assert _until(lambda: "attention" in order)
        lead.epoch = 3  # lost, another led, taken again
        count = len(order)
        assert _until(lambda: order[count:].count("sweep") == 1)
        # At most the one call already under way when the epoch changed comes before it.
        assert order[count:].index("sweep") <= 1
    finally:
        loop.shutdown(5)
    assert order[0] == "sweep"


def test_a_process_without_background_sweeps_never_acts() -> None:
    rt = FakeRuntime()
    lead = Switch()
    lead.on = True
    loop = Loop(cast(Any, rt), sweep_interval=0, acceleration=1, leadership=cast(Any, lead))
    assert loop.lease_thread is None and not loop.acting()
    loop.start()
    try:
        rt.attention.set()
        time.sleep(0.6)
        assert (rt.sweeps, rt.attended) == (0, 0)
    finally:
        loop.shutdown(5)
