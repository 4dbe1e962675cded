"""Request-scoped access to the runtime and to who is asking (the front door,
compute/api/auth.py, has already decided that they may).

The plain functions serve callers that hold the request (the pages). Routes take the
``Rt``/``Who``/``Actor``/``Now`` aliases: async twins, because FastAPI runs every sync
dependency on a worker thread, and a thread hop per dependency was a large share of a
small request's CPU (none of these do I/O)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, ParamSpec, TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from compute.api.auth import PRINCIPAL_KEY
from compute.api.read_cache import Fresh
from compute.auth.policy import Unauthenticated
from compute.auth.principal import Actor, Principal
from compute.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def wall_now(request: Request) -> datetime:
    """The wall clock: tokens and sessions live in real time, whatever the simulation's
    clock says."""
    now: datetime = request.app.state.door.wall()
    return now


def principal(request: Request) -> Principal:
    """The principal the front door let in. A route reached without one is a public route
    asking for it: a bug in the table, refused rather than served as nobody."""
    found = request.scope.get(PRINCIPAL_KEY)
    if not isinstance(found, Principal):
        raise Unauthenticated("this needs a credential: 'Authorization: Bearer <token>'")
    return found


def actor(request: Request) -> Actor:
    """Who a change is recorded as: "token:12 (alice-laptop)", with its source."""
    return Actor(principal(request))


async def _runtime(request: Request) -> Runtime:
    return runtime(request)


async def _wall_now(request: Request) -> datetime:
    return wall_now(request)


async def _principal(request: Request) -> Principal:
    return principal(request)


async def _actor(request: Request) -> str:
    return actor(request)


Rt = Annotated[Runtime, Depends(_runtime)]
Who = Annotated[Principal, Depends(_principal)]
Now = Annotated[datetime, Depends(_wall_now)]
# Who a change is recorded as (the front door, compute/api/auth.py, let them in).
ActorName = Annotated[str, Depends(_actor)]


P = ParamSpec("P")
T = TypeVar("T")


def on_loop(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run on the event loop, no worker thread: for reads of a few rows that
    never wait for a lock (SQLite in WAL mode: readers never wait for writers). A thread
    hop costs more than such a read, and under load threads only take turns on one GIL;
    anything that can wait (a write, a build of many rows) stays on ``one_hop``."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return route(*args, **kwargs)

    return run


def read_cache(request: Request, name: str, ttl: float, share: float = 1.0) -> Fresh:
    """The app's cache of answer ``name`` (compute/api/read_cache.py), made on first use;
    call it on the event loop (no two callers at once)."""
    caches: dict[str, Fresh] | None = getattr(request.app.state, "read_caches", None)
    if caches is None:
        caches = request.app.state.read_caches = {}
    found = caches.get(name)
    if found is None:
        found = caches[name] = Fresh(ttl, share)
    return found


def one_hop(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run as an async one that does its work on one worker thread. FastAPI
    gives a sync route two hops (the route, then the check of its answer against the
    declared type); this runs the route on a thread and the check on the event loop (a
    dict of any: no deep walk). Signature and annotations stay the route's."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await run_in_threadpool(route, *args, **kwargs)

    return run


# Each event loop's threads for the nodes' reports, apart from every other route's: a report
# can wait for SQLite's one write lock (a sweep's chunk), and when every thread of one pool
# waited so, the reads that needed a thread (lists, events, the front door's lookups) queued
# behind them (10,240 nodes, 200 requests/s: lists' and events' p99 200-350 ms during
# sweeps, the node reads on the event loop 34 ms).
_REPORT_THREADS: RunVar[CapacityLimiter] = RunVar("computectl_report_threads")
# Two: on SQLite one writes at a time, and one more has its report read and checked while
# it waits; the rest wait on the event loop, holding no thread.
REPORT_THREADS = 2


def _report_threads() -> CapacityLimiter:
    try:
        return _REPORT_THREADS.get()
    except LookupError:
        limiter = CapacityLimiter(REPORT_THREADS)
        _REPORT_THREADS.set(limiter)
        return limiter


def report_hop(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """``one_hop`` on the threads kept for nodes' reports (writes that may wait for the
    lock), so that no other route waits for a thread behind them."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(route, *args, **kwargs)
        return await to_thread.run_sync(call, limiter=_report_threads())

    return run
