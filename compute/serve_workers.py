"""API worker processes for `computectl serve --workers N`.

One interpreter holds one GIL: a sweep in the process that serves the API stalls every
request for as long as it runs Python (seconds at fleet scale), and one core is all the API
gets. With workers, the process that `serve` starts acts (lease, sweeps, attention) and
serves nothing, and N processes serve the API on one listening socket that the kernel shares
out among them. They never act: each holds a Leadership it never claims (the same as a
replica that follows), so a posted result that must drain is flagged in the store and the
acting process's attention loop, which looks there every 0.25 s, acts on it.

A worker is ``python -m compute.serve_workers FD THREADS PARENT [SWITCH_MS]``: the
listening socket inherited as FD, its API threads, the pid of the `serve` it belongs to, its
GIL switch interval (``serve --switch-ms``; Python's 5 ms if absent), and the parent's
settings, as JSON, on its standard input: it builds its own runtime from exactly what the
parent runs with.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from compute import gc_pauses
from compute.simulation.datacenter import SimulatedDatacenter

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from compute.config import Settings
    from compute.runtime import Runtime
    from compute.services.leadership import Leadership

log = logging.getLogger("computectl")

# How often a worker re-reads the simulated time from the world (between reads it counts
# on from the wall clock, as the acting process moves it).
FOLLOW_SECONDS = 1.0
# A worker that dies is started again, at most this often.
RESTART_SECONDS = 2.0


def default_count(cpus: int | None) -> int:
    """Workers when the setting is unset: one per core beyond two (one core for the acting
    process's sweeps, one shared), at most 8; none on two cores or fewer, where the
    processes would only take turns on the same cores."""
    return max(0, min(8, (cpus or 1) - 2))


def limit_threads(app: ASGIApp, threads: int) -> ASGIApp:
    """``app`` with the event loop's worker threads limited to ``threads``: set as the
    loop starts (the limiter belongs to the running loop)."""
    limited = False

    async def run(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal limited
        if not limited:
            from anyio import to_thread

            to_thread.current_default_thread_limiter().total_tokens = threads
            limited = True
        await app(scope, receive, send)

    return run


def listening(host: str, port: int) -> socket.socket:
    """The socket every worker accepts on (inheritable: passed to each by number)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Workers:
    """The API worker processes of one `serve`: started, restarted when one dies, and
    stopped (SIGTERM: uvicorn's graceful shutdown, then SIGKILL) before the acting process
    lets its lease go."""

    def __init__(
        self,
        count: int,
        sock: socket.socket,
        settings: Settings,
        threads: int,
        switch_ms: float | None = None,
    ) -> None:
        self.count = count
        self.threads = threads
        self.switch_ms = switch_ms
        self.sock = sock
        self.settings_json = settings.model_dump_json()
        self.procs: list[subprocess.Popen[bytes]] = []
        self._started: list[float] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        fd = self.sock.fileno()
        argv = [sys.executable, "-m", "compute.serve_workers", str(fd), str(self.threads)]
        argv.append(str(os.getpid()))
        if self.switch_ms is not None:
            argv.append(repr(self.switch_ms))
        proc = subprocess.Popen(argv, pass_fds=(fd,), stdin=subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(self.settings_json.encode())
        proc.stdin.close()
        return proc

    def start(self) -> None:
        for _ in range(self.count):
            self.procs.append(self._spawn())
            self._started.append(time.monotonic())

    def watch(self, stop: threading.Event) -> None:
        """Until ``stop``: start again any worker that exited."""
        while not stop.wait(0.5):
            for i, proc in enumerate(self.procs):
                code = proc.poll()
                if code is None or time.monotonic() - self._started[i] < RESTART_SECONDS:
                    continue
                log.warning("API worker %d exited (%s); starting another", proc.pid, code)
                self.procs[i] = self._spawn()
                self._started[i] = time.monotonic()

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.sock.close()


class FollowingDatacenter(SimulatedDatacenter):
    """The simulated world as an API worker holds it: it never moves time (the acting
    process does), and reading the time must not wait for the world, which a sweep holds
    for seconds. The time is read from the world every FOLLOW_SECONDS on a thread of its own
    and counted on from the wall clock in between; it never goes back."""

    _base: tuple[float, float] | None = None  # (simulated seconds, time.monotonic())
    _acceleration: float = 1.0

    def follow(self, acceleration: float, stop: threading.Event) -> threading.Thread:
        self._acceleration = acceleration
        self._read()
        thread = threading.Thread(
            target=self._follow, args=(stop,), name="computectl-clock", daemon=True
        )
        thread.start()
        return thread

    def _follow(self, stop: threading.Event) -> None:
        while not stop.wait(FOLLOW_SECONDS):
            try:
                self._read()
            except Exception:  # the last reading counts on; the next look tries again
                log.exception("reading the simulated time failed")

    def _read(self) -> None:
        with self.session():
            stored = self.fleet.now
        counted = self._counted()
        self._base = (stored if counted is None else max(stored, counted), time.monotonic())

    def _counted(self) -> float | None:
        base = self._base
        if base is None:
            return None
        return base[0] + (time.monotonic() - base[1]) * self._acceleration

    def now(self) -> datetime:
        counted = self._counted()
        if counted is None:
            return super().now()
        return datetime.fromtimestamp(counted, UTC)

    def advance(self, seconds: float) -> list[tuple[str, str]]:
        raise RuntimeError("an API worker never moves simulated time")


def orphaned(parent: int, stop: threading.Event) -> None:
    """Stop this worker (SIGTERM: uvicorn's graceful shutdown) once its parent is gone: a
    `serve` killed with SIGKILL must not leave workers serving an API that nothing acts for,
    on a port a restarted `serve` could not bind."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def worker_runtime(settings: Settings, stop: threading.Event) -> tuple[Runtime, Leadership]:
    """A runtime that serves the API and never acts."""
    from compute.runtime import Runtime
    from compute.services.leadership import Leadership, lease_seconds

    pools = settings.effective_pools
    dc: FollowingDatacenter | None = None
    if settings.simulation.enabled and any(p.backend == "simulated" for p in pools):
        state = settings.data_dir / "simulation" / "state.json"
        dc = FollowingDatacenter(settings.simulation, pools, state)
        dc.follow(settings.simulation.time_acceleration, stop)
    rt = Runtime.build(settings, datacenter=dc)
    # Never claimed: this process may not act (its remediator asks before each backend call).
    lead = Leadership(rt.store, ttl=lease_seconds(settings))
    rt.leadership = lead
    return rt, lead


def main() -> None:
    """One API worker (``python -m compute.serve_workers FD THREADS PARENT [SWITCH_MS]``;
    settings JSON on stdin)."""
    import uvicorn

    from compute.api import create_app
    from compute.auth.serviceaccount import node_identities, pool_in
    from compute.config import Settings
    from compute.loop import Loop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if len(sys.argv) > 4:
        # The loop gets the GIL back sooner from a thread that runs Python (a report's
        # write, the overview's build): it waits up to this long each time.
        sys.setswitchinterval(float(sys.argv[4]) / 1000)
    sock = socket.socket(fileno=int(sys.argv[1]))
    settings = Settings.model_validate_json(sys.stdin.read())
    stop = threading.Event()
    watch = threading.Thread(target=orphaned, args=(int(sys.argv[3]), stop), daemon=True)
    watch.start()
    rt, lead = worker_runtime(settings, stop)
    # Never started: /readyz and /metrics read the interval and the lease through it.
    loop = Loop(
        rt,
        sweep_interval=settings.sweep.interval_seconds,
        acceleration=settings.simulation.time_acceleration,
        leadership=lead,
    )
    loop.started_wall = time.time()
    identities = node_identities(rt.settings, pool_in(rt.store))
    verifiers = [identities.resolve] if identities else []
    app = limit_threads(create_app(rt, loop, verifiers=verifiers), int(sys.argv[2]))
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    gc_pauses.settle()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        stop.set()
        identities.close()
        rt.close()
        os.close(sock.detach())


if __name__ == "__main__":
    main()
