"""Where an API request's time goes, seen from inside `serve` (benchmarks/api_load_bench.py
``--probe DIR``): loaded in every process of serve (the acting one and each API worker)
through a ``sitecustomize`` that the bench puts first on PYTHONPATH (with a copy of this
file beside it), it records with wall times, and writes to DIR/<pid>.json as the process
exits:

- ``gc``: each collection (start, seconds, generation), from gc.callbacks;
- ``requests``: each HTTP request the app served (start, seconds, method, path), from the
  ASGI call to the end of the answer;
- ``lag``: the event loop's lateness past LAG_MS (start, seconds): a read run on the loop,
  or the GIL held by another thread, delays every request of the process;
- ``writes``: each SQLite write transaction (thread, wall start, wait for the writers'
  locks, held from BEGIN IMMEDIATE to the end, the thread's CPU meanwhile);
- ``builds``: each cached answer built (compute/api/read_cache.py: start, seconds).

Measurement only: it changes no behaviour of serve beyond its own small costs.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

LAG_MS = 5.0
TICK = 0.002


def install(out: Path) -> None:
    """Record this process's events and write them to ``out``/<pid>.json at exit."""
    rec: dict[str, list[Any]] = {k: [] for k in ("gc", "requests", "lag", "writes", "builds")}
    rec["argv"] = [os.environ.get("_", ""), *__import__("sys").argv]
    rec["gc"] = gc_pauses()
    _patch_store(rec)
    _patch_app(rec)
    _patch_cache(rec)

    def dump() -> None:
        (out / f"{os.getpid()}.json").write_text(json.dumps(rec))

    atexit.register(dump)

    # uvicorn raises the SIGTERM it caught again once it has shut down (an API worker's
    # end), which would end the process before atexit runs.
    def on_term(signum: int, _frame: Any) -> None:
        dump()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_term)


def gc_pauses() -> list[tuple[float, float, int]]:
    """Every collection from now on in this process: (wall start, seconds, generation)."""
    pauses: list[tuple[float, float, int]] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            took = time.perf_counter() - started.pop()
            pauses.append((time.time() - took, took, info["generation"]))

    gc.callbacks.append(on_gc)
    return pauses


def _patch_store(rec: dict[str, list[Any]]) -> None:
    from compute.store import engine

    cls = engine.QueuedWrites
    begin, release = cls.begin_write, cls._release
    held: dict[int, tuple[float, float, float]] = {}

    def begin_write(self: Any) -> None:
        asked = time.time()
        begin(self)
        held[id(self)] = (asked, time.time(), time.thread_time())

    def _release(self: Any) -> None:
        was = held.pop(id(self), None) if self.holding else None
        release(self)
        if was is not None:
            asked, got, cpu = was
            name = threading.current_thread().name
            took = time.time() - got
            rec["writes"].append((name, asked, got - asked, took, time.thread_time() - cpu))

    cls.begin_write = begin_write  # type: ignore[method-assign]
    cls._release = _release  # type: ignore[method-assign]


def _patch_cache(rec: dict[str, list[Any]]) -> None:
    from compute.api import read_cache

    cls: Any = read_cache.Fresh
    get = cls.get

    def timed_get(self: Any, key: Any, build: Any) -> Any:
        def timed() -> Any:
            t = time.time()
            try:
                return build()
            finally:
                rec["builds"].append((t, time.time() - t, threading.current_thread().name))

        return get(self, key, timed)

    cls.get = timed_get


def _patch_app(rec: dict[str, list[Any]]) -> None:
    import compute.api

    create = compute.api.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = create(*args, **kwargs)
        lagging: list[bool] = []

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            if not lagging:
                lagging.append(True)
                asyncio.get_running_loop().create_task(_watch_lag(rec))
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            t, p = time.time(), time.perf_counter()
            try:
                await app(scope, receive, send)
            finally:
                took = time.perf_counter() - p
                rec["requests"].append((t, took, scope["method"], scope["path"]))

        return timed

    compute.api.create_app = create_app  # type: ignore[assignment]


async def _watch_lag(rec: dict[str, list[Any]]) -> None:
    while True:
        p = time.perf_counter()
        await asyncio.sleep(TICK)
        late = time.perf_counter() - p - TICK
        if late * 1000 > LAG_MS:
            rec["lag"].append((time.time() - late, late))


SITECUSTOMIZE = """\
import os
from pathlib import Path
if os.environ.get("API_LOAD_PROBE_DIR"):
    from api_load_probe import install
    install(Path(os.environ["API_LOAD_PROBE_DIR"]))
"""


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))] if s else float("nan")


def _line(what: str, xs: list[float]) -> str:
    if not xs:
        return f"    {what}: none"
    ms = [x * 1000 for x in xs]
    return (
        f"    {what}: n={len(xs)} total {sum(xs):.2f} s, p50 {_pct(ms, 0.5):.1f} "
        f"p99 {_pct(ms, 0.99):.1f} max {max(ms):.1f} ms"
    )


def tail_report(
    out: Path,
    samples: list[tuple[float, float]],
    t0: float,
    t1: float,
    generator_gc: list[tuple[float, float, int]],
    slow: float = 0.05,
) -> None:
    """Print where serve's time went during [t0, t1] and, of the requests that took more
    than ``slow`` (``samples``: due wall time, latency), how many overlapped each cause."""
    procs = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    causes: dict[str, list[tuple[float, float]]] = {}

    def during(xs: list[Any]) -> list[Any]:
        return [x for x in xs if t0 <= x[0] <= t1]

    for rec in procs:
        role = "worker" if "-m" in rec["argv"] else "acting"
        if not rec["requests"] and role == "worker":
            role = "worker (idle)"
        print(f"  {role} {' '.join(rec['argv'][1:3])[:60]}")
        for gen in (0, 1, 2):
            xs = [d for _, d, g in during(rec["gc"]) if g == gen]
            print(_line(f"gc gen{gen}", xs))
        causes.setdefault("gc > 5 ms", []).extend(
            (s, d) for s, d, _ in during(rec["gc"]) if d > 0.005
        )
        print(_line("requests served (ASGI)", [d for _, d, *_ in during(rec["requests"])]))
        print(_line("event loop late", [d for _, d in during(rec["lag"])]))
        causes.setdefault("loop late > 5 ms", []).extend(during(rec["lag"]))
        for name in sorted({w[0] for w in rec["writes"]}):
            ws = [w for w in rec["writes"] if w[0] == name and t0 <= w[1] <= t1]
            print(_line(f"writes of {name}: wait", [w[2] for w in ws]))
            print(_line(f"writes of {name}: held", [w[3] for w in ws]))
            print(_line(f"writes of {name}: CPU while held", [w[4] for w in ws]))
            if role == "acting":
                causes.setdefault("acting process writes > 5 ms", []).extend(
                    (w[1] + w[2], w[3]) for w in ws if w[3] > 0.005
                )
        builds = during(rec["builds"])
        print(_line("cached answers built", [b[1] for b in builds]))
        causes.setdefault("overview built", []).extend((b[0], b[1]) for b in builds)
    print(_line("the generator's gc", [d for s, d, _ in generator_gc if t0 <= s <= t1]))
    causes["generator gc > 5 ms"] = [(s, d) for s, d, _ in generator_gc if d > 0.005]
    slow_ones = [(due, lat) for due, lat in samples if lat > slow]
    print(f"  requests over {slow * 1000:.0f} ms: {len(slow_ones)} of {len(samples)}; overlapping:")
    for cause, spans in causes.items():
        hit = sum(
            1 for due, lat in slow_ones if any(s < due + lat and s + d > due for s, d in spans)
        )
        print(f"    {cause}: {hit} ({len(spans)} in all)")
