"""`computectl serve` and `computectl demo`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from compute import gc_pauses
from compute.cli.context import CliContext
from compute.errors import RefusedError
from compute.loop import SWEEP_NICENESS, Loop
from compute.runtime import Runtime
from compute.serve_workers import Workers, default_count, limit_threads, listening
from compute.simulation.demo import opening_fault

if TYPE_CHECKING:
    from compute.services.leadership import Leadership

log = logging.getLogger("computectl")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Tuning:
    """How each serving process shares its one interpreter (``serve --threads/--switch-ms``:
    the API workers' too)."""

    # Threads that run the API's routes at once (anyio's default is 40). Routes are Python
    # holding one GIL, and on SQLite writes queue anyway: past a few threads more only
    # interleave requests, so each waits for all the others.
    threads: int = 8
    # How long a thread keeps the GIL while others wait (Python's default 5 ms): a request
    # waits that long each time it gets the GIL back from a sweep mid-way.
    switch_ms: float | None = None
    # API worker processes (compute/serve_workers.py): 0, this process serves the API too.
    workers: int = 0


# The name the unit tests (and older callers) know it by.
_limit_threads = limit_threads


def _run(
    rt: Runtime,
    host: str,
    port: int,
    sweep_interval: float,
    acceleration: float,
    banner: str,
    after_start: Any = None,
    tuning: Tuning | None = None,
) -> None:
    # The server's libraries load only for the commands that serve.
    import uvicorn

    from compute.api import create_app
    from compute.auth.serviceaccount import node_identities, pool_in

    tuning = tuning or Tuning()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if port == 0:
        port = _free_port(host)
    if tuning.switch_ms is not None:
        sys.setswitchinterval(tuning.switch_ms / 1000)
    lead = _leadership(rt, acts=sweep_interval > 0)
    # With API workers, their requests come before this process's sweeps (compute/loop.py).
    loop = Loop(
        rt,
        sweep_interval=sweep_interval,
        acceleration=acceleration,
        leadership=lead,
        sweep_niceness=SWEEP_NICENESS if tuning.workers else 0,
        settle_gc=True,
    )
    # Node credentials the workload managers vouch for (a DaemonSet pod's token), asked
    # after computectl's own tokens: docs/deploy-node-identity.md.
    identities = node_identities(rt.settings, pool_in(rt.store))
    verifiers = [identities.resolve] if identities else []
    url = f"http://{host}:{port}/"
    role = lead.role() if loop.acts else "API only (no background sweeps: cron's sweeps act)"
    if tuning.workers:
        role += f"; the API in {tuning.workers} worker processes"
    click.echo(
        f"{banner}\n  overview  {url}\n  API docs  {url}docs\n  metrics   {url}metrics\n"
        f"  data dir  {rt.settings.data_dir}\n  role      {role}\nCtrl-C stops.",
        err=False,
    )
    try:
        sock = listening(host, port) if tuning.workers else None
    except OSError as exc:
        raise RefusedError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # What start-up made lives as long as the process: out of the collector's way.
    gc_pauses.settle()
    loop.start()
    timer = None
    if after_start is not None:
        timer = after_start()
    try:
        if sock is not None:
            _serve_workers(rt, sock, tuning)
        else:
            app = limit_threads(create_app(rt, loop, verifiers=verifiers), tuning.threads)
            uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        if timer is not None:
            timer.cancel()
        loop.shutdown()
        identities.close()
        rt.close()
        click.echo("stopped; state saved in " + str(rt.settings.data_dir))


def _serve_workers(rt: Runtime, sock: socket.socket, tuning: Tuning) -> None:
    """This process acts; the workers serve the API until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = Workers(tuning.workers, sock, rt.settings, tuning.threads, tuning.switch_ms)
    workers.start()
    try:
        workers.watch(stop)
    finally:
        workers.stop()


def _leadership(rt: Runtime, acts: bool) -> Leadership:
    """Take the lease before anything acts. PostgreSQL: without it this replica serves the
    API and waits for the lease. SQLite is one host's: a second acting process is refused.
    A process that never acts (``acts`` false) takes no lease: its remediator never acts."""
    from compute.services.leadership import Leadership, lease_seconds

    lead = Leadership(rt.store, ttl=lease_seconds(rt.settings))
    if acts and not lead.claim() and rt.store.engine.dialect.name == "sqlite":
        raise RefusedError(lead.refusal())
    rt.leadership = lead  # the remediator asks it before each backend call
    return lead


def workers_option(f: Any) -> Any:
    return click.option(
        "--workers",
        type=click.IntRange(0, 64),
        default=None,
        help="API worker processes beside the one that acts (default: the setting "
        "server.workers; 0: one process serves the API and acts).",
    )(f)


def tuning_options(f: Any) -> Any:
    f = click.option(
        "--switch-ms",
        type=click.FloatRange(0.1, 100.0),
        default=None,
        help="GIL switch interval in ms, in every process of serve (default: Python's, 5).",
    )(f)
    return click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=Tuning.threads,
        show_default=True,
        help="API requests handled at once (worker threads).",
    )(f)


def host_port(f: Any) -> Any:
    f = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=None,
        help="TCP port (default: the setting server.port; 0: any free port).",
    )(f)
    return click.option(
        "--host", default=None, help="Address to listen on (default: the setting server.host)."
    )(f)


@click.command()
@host_port
@tuning_options
@workers_option
@click.pass_obj
def serve(
    obj: CliContext,
    host: str | None,
    port: int | None,
    threads: int,
    switch_ms: float | None,
    workers: int | None,
) -> None:
    """Run the control plane: API, overview page, /metrics and background sweeps."""
    s = obj.settings()
    count = workers if workers is not None else s.server.workers
    if count is None:
        count = default_count(os.cpu_count())
    rt = obj.runtime()
    _run(
        rt,
        host or s.server.host,
        s.server.port if port is None else port,
        s.sweep.interval_seconds,
        s.simulation.time_acceleration,
        "computectl serving",
        tuning=Tuning(threads, switch_ms, count),
    )


@click.command()
@host_port
@tuning_options
@click.pass_obj
def demo(
    obj: CliContext, host: str | None, port: int | None, threads: int, switch_ms: float | None
) -> None:
    """Run the embedded default: a simulated datacenter kept healthy, faster than real time."""
    base = obj.settings()
    d = base.demo
    s = obj.settings(
        {
            "simulation": {
                "enabled": True,
                "time_acceleration": d.time_acceleration,
                "fault_rate_per_node_hour": d.fault_rate_per_node_hour,
                "technician_repair_hours": d.technician_repair_hours,
            },
            "sweep": {"interval_seconds": d.sweep_interval_seconds},
            # The simulated racks draw more than the default budget: the demo shows the
            # caps that bring them under it.
            "topology": {"cap_gpus": True},
        }
    )
    rt = obj.runtime()
    from compute.services.demo_identities import demo_logins, logins_text

    host = host or s.server.host
    port = s.server.port if port is None else port
    if port == 0:
        port = _free_port(host)
    click.echo(logins_text(demo_logins(rt), f"http://{host}:{port}/"))

    def opening() -> threading.Timer | None:
        if not d.opening_fault or rt.datacenter is None:
            return None
        dc = rt.datacenter

        def fire() -> None:
            node = opening_fault(dc, d.opening_fault)
            if node:
                log.info("demo: injected %s on %s", d.opening_fault, node)

        t = threading.Timer(d.opening_fault_after_seconds, fire)
        t.daemon = True
        t.start()
        return t

    _run(
        rt,
        host,
        port,
        s.sweep.interval_seconds,
        s.simulation.time_acceleration,
        f"computectl demo: {s.simulation.racks} racks x {s.simulation.nodes_per_rack} nodes x "
        f"{s.simulation.gpus_per_node} {s.simulation.gpu_model}, time x"
        f"{s.simulation.time_acceleration:g}",
        after_start=opening,
        tuning=Tuning(threads, switch_ms),
    )
