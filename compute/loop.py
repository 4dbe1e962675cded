"""The background loop of `serve`/`demo`: advance the simulation; while this process leads,
sweep on schedule and act on nodes that need attention at once."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from compute import gc_pauses

if TYPE_CHECKING:
    from compute.runtime import Runtime
    from compute.services.leadership import Leadership

log = logging.getLogger("computectl")

# Nodes flagged by another replica's API reach us through the store, not our event: look
# this often even when our own attention event stays clear.
ATTENTION_POLL_SECONDS = 0.25
# How much nicer than the process the sweep thread runs where API worker processes serve
# the API (`serve --workers N`): on a busy host the workers' requests come first and the
# sweep takes what is left. Linux sets a thread's niceness by its thread id; the attention
# thread keeps the process's, so a posted fatal result is acted on as before.
SWEEP_NICENESS = 10


class Loop:
    """Daemon threads: sweeps (and the simulation's time), attention, and the lease when
    there is ``leadership`` (without it the process acts alone, as tests and in-process
    tools do). With ``sweep_interval`` 0 the process never acts: it takes no lease, and
    `computectl sweep` run from cron does the acting.

    A process that becomes the leader sweeps before it acts on anything: the one before it
    may have died between a backend call and its record, and only a sweep of the backends
    shows what it did (acting on a flagged node first would do it again).

    /readyz and /metrics read ``sweeps``, ``last_error``, ``started_wall``,
    ``sweep_interval`` and ``leadership``."""

    def __init__(
        self,
        rt: Runtime,
        sweep_interval: float,
        acceleration: float,
        leadership: Leadership | None = None,
        sweep_niceness: int = 0,
        settle_gc: bool = False,
    ) -> None:
        self.rt = rt
        # Once the first sweep has loaded the world: compute/gc_pauses.py.
        self.settle_gc = settle_gc
        self.sweep_niceness = sweep_niceness
        self.sweep_interval = sweep_interval
        self.acceleration = acceleration
        self.leadership = leadership
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="computectl-loop", daemon=True)
        # Its own thread: a posted fatal result never waits for a running sweep to end.
        self.attention_thread = threading.Thread(
            target=self._attend_loop, name="computectl-attention", daemon=True
        )
        self.lease_thread: threading.Thread | None = None
        if leadership is not None and self.acts:
            self.lease_thread = threading.Thread(
                target=leadership.keep, args=(self.stop,), name="computectl-lease", daemon=True
            )
        self.sweeps = 0
        self.last_error: str | None = None
        self.started_wall: float | None = None
        # The lease's epoch this process last swept under (None: not yet).
        self._synced: int | None = None

    @property
    def acts(self) -> bool:
        """Whether this process ever acts (it does not when cron does)."""
        return self.sweep_interval > 0

    def start(self) -> None:
        self.started_wall = time.time()
        if self.lease_thread is not None:
            self.lease_thread.start()
        self.thread.start()
        self.attention_thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
        self.attention_thread.join(timeout)
        # The lease goes last: released only once this process has stopped acting.
        if self.lease_thread is not None:
            self.lease_thread.join(timeout)

    def acting(self) -> bool:
        if not self.acts:
            return False
        return self.leadership is None or self.leadership.acting()

    def _epoch(self) -> int:
        return 0 if self.leadership is None else self.leadership.epoch

    def _run(self) -> None:
        if self.sweep_niceness:
            _nicer(self.sweep_niceness)
        last_tick = time.monotonic()
        next_sweep = last_tick
        while not self.stop.is_set():
            now = time.monotonic()
            if self.rt.datacenter is not None:
                self.rt.datacenter.advance((now - last_tick) * self.acceleration)
            last_tick = now
            epoch = self._epoch()
            if self.acting() and (now >= next_sweep or self._synced != epoch):
                self.last_error = _attempt("sweep", self._sweep)
                if self.last_error is None:
                    self.sweeps += 1
                    if self.sweeps == 1 and self.settle_gc:
                        gc_pauses.settle()
                # Even a failed sweep: attention must not wait for every backend to answer.
                self._synced = epoch
                next_sweep = now + self.sweep_interval
            self.stop.wait(0.5)

    def _attend_loop(self) -> None:
        """While leading (and synced): act on flagged nodes when our API flags one, and look
        every 0.25 s for those other replicas' APIs flagged in the store."""
        attention = self.rt.attention
        while not self.stop.is_set():
            if not self.acting() or self._synced != self._epoch():
                self.stop.wait(ATTENTION_POLL_SECONDS)
                continue
            _attempt("acting on attention", self._attend)
            attention.wait(ATTENTION_POLL_SECONDS)

    def _attend(self) -> None:
        # It clears the event first: a result posted meanwhile sets it again.
        acted = self.rt.act_on_attention()
        if acted:
            log.info("acted on %d node(s) needing attention", acted)

    def _sweep(self) -> None:
        report = self.rt.sweep()
        for a in report.actions:
            log.info("%s %s: %s", a["action"], a["node"], a["reason"])


def _nicer(by: int) -> None:
    """This thread (alone, on Linux) ``by`` nicer; where that cannot be done, as it was."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + by)
    except (AttributeError, OSError) as exc:
        log.warning("could not lower the sweep thread's priority: %s", exc)


def _attempt(what: str, run: Callable[[], object]) -> str | None:
    """Run one step of the loop; what went wrong, if anything (the loop outlives it)."""
    try:
        run()
    except Exception as exc:
        log.exception("%s failed", what)
        return f"{type(exc).__name__}: {exc}"
    return None
