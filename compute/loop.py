"""The background loop of `serve`/`demo`: advance the simulation, sweep on schedule."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compute.runtime import Runtime

log = logging.getLogger("computectl")


class Loop:
    """One daemon thread; /readyz and /metrics read ``sweeps``, ``last_error``,
    ``started_wall`` and ``sweep_interval``."""

    def __init__(self, rt: Runtime, sweep_interval: float, acceleration: float) -> None:
        self.rt = rt
        self.sweep_interval = sweep_interval
        self.acceleration = acceleration
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="computectl-loop", daemon=True)
        self.sweeps = 0
        self.last_error: str | None = None
        self.started_wall: float | None = None

    def start(self) -> None:
        self.started_wall = time.time()
        self.thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        last_tick = time.monotonic()
        next_sweep = last_tick
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                if self.rt.datacenter is not None:
                    self.rt.datacenter.advance((now - last_tick) * self.acceleration)
                last_tick = now
                if self.sweep_interval > 0 and now >= next_sweep:
                    report = self.rt.sweep()
                    self.sweeps += 1
                    self.last_error = None
                    for a in report.actions:
                        log.info("%s %s: %s", a["action"], a["node"], a["reason"])
                    next_sweep = now + self.sweep_interval
            except Exception as exc:  # the loop must outlive one bad sweep
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("sweep failed")
                next_sweep = now + self.sweep_interval
            self.stop.wait(0.5)
