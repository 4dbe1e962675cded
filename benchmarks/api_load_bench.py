"""The API under load while sweeps run: `computectl serve` as a process on the embedded
default (a fresh data directory, the fleet size and sweep interval given; SQLite, or the
throw-away PostgreSQL database ``--postgres`` names, emptied first), and an open-loop
schedule of requests from this machine: request i is due at t0 + i/rate whatever the server
does, latency counted from its due time (a request waiting for a free connection counts its
wait; "late": sent > 5 ms after due). The generator's own CPU is given: it shares the machine.

    python benchmarks/api_load_bench.py [--racks 16 --nodes-per-rack 64] [--sweep-interval 15]
        [--rate 200] [--duration 60] [--threads 8] [--workers-api N] [--postgres URL]
        [--mix api|healthz]

Mix ``api``: node health reports (nine passive checks, 2 % failing one), GET a node,
filtered node lists, events, the overview. ``healthz``: GET /healthz alone, the floor of the
HTTP stack on this machine. Sweeps that ran during the load come from the store's last_sweep
record. Requests carry ``--token`` (or COMPUTECTL_TOKEN), else an operator token made with
`computectl tokens create`. ``--workers-api N``: `serve --workers N` (serve's CPU counts its
workers'). ``--profile``: serve under benchmarks/serve_sampler.py (the acting process only).
``--probe DIR``: where each process of serve spent its time, and what the requests over
50 ms overlapped (benchmarks/api_load_probe.py). ``--code DIR``: serve runs that tree's code
(a copy of another commit: ``git archive COMMIT | tar -x -C DIR``), for an A/B under the
same bench. Serve itself: benchmarks/api_load_serve.py.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.api_load_probe import gc_pauses, tail_report  # noqa: E402
from benchmarks.api_load_serve import Serve, cpu_by_process, cpu_seconds, watch_sweeps  # noqa: E402
from benchmarks.results import add_row, machine  # noqa: E402

LATE = 0.005
# Kind, share. Reports dominate (every node posts its checks); people and tools read nodes,
# lists, events; the overview (every node, 130 kB at 1,024) 1/s, as a few open pages poll.
MIXES: dict[str, tuple[tuple[str, float], ...]] = {
    "api": (("report", 0.6), ("node", 0.3), ("list", 0.05), ("events", 0.045),
            ("overview", 0.005)),
    "healthz": (("healthz", 1.0),),
}  # fmt: skip
VBIOS = "96.00.89.00.01"
MARKER = "<!-- api load rows, with the generator's CPU -->"
COLUMNS = (
    "date", "machine", "load avg before / after", "store", "fleet", "sweep interval", "mix",
    "requests", "serve", "CPU a request: serve / generator", "late", "errors",
    "sweeps during (s)", "p50 / p95 / p99 / max, all", "p99 by kind",
    "p99 due during a sweep / outside", "note",
)  # fmt: skip
SECTION = (
    """## API under load, with sweeps running (`benchmarks/api_load_bench.py`)

As the table above, plus the generator's own CPU (same 2 cores), the store (SQLite, or
PostgreSQL from testenv/postgres, fsync off, same machine) and serve's threads. `healthz`
rows: the same schedule to GET /healthz alone, the HTTP stack's floor at that moment.
Requests carry an operator's bearer token. Target: p99 < 50 ms at 200/s for 60 s."""
    + "\n\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)
)  # fmt: skip


# What a healthy 8-GPU node's `computectl node check` posts: check, values.
CHECKS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("gpu_count", {"gpus_visible": 8, "gpus_expected": 8}), ("xid", {"xid_events": 0}),
    ("ecc", {"ecc_volatile_uncorrected": 0, "ecc_aggregate_uncorrected": 0}),
    ("nvlink", {"nvlink_crc_errors": 0, "nvlink_replay_errors": 0}),
    ("pcie", {"pcie_links_narrow": 0, "pcie_links_slow": 0}),
    ("throttle", {"gpus_hw_throttled": 0, "gpus_sw_thermal": 0}),
    ("temperature", {"temperature_max_celsius": 61.0}),
    ("infiniband", {"ib_ports": 8, "ib_ports_down": 0, "ib_ports_slow": 0}),
    ("versions", {"driver_version": "550.90", "cuda_version": "12.4", "vbios_versions": VBIOS}),
)  # fmt: skip


def report_body(at: str, fail: bool) -> list[dict[str, Any]]:
    """A node's report at ``at`` (with a narrow PCIe link on GPU 3 if ``fail``)."""
    out: list[dict[str, Any]] = [
        {"check": c, "version": "1", "status": "pass", "at": at, "values": v} for c, v in CHECKS
    ]
    if fail:
        narrow = {"pcie_links_narrow": 1, "pcie_links_slow": 0}
        evidence = "GPU 3: PCIe x8 (expected x16)"
        out[4] = {**out[4], "status": "fail", "evidence": evidence, "gpus": [3], "values": narrow}
    return out


class Sample(NamedTuple):
    kind: str
    due: float
    latency: float
    late: bool
    status: int


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def worker(serve: Serve, plan: list[tuple[float, str, str, str, Any]], nxt: Any, run: Run) -> None:
    """Take the next due request, wait for its time, send it on this worker's connection."""
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    headers = {"Authorization": f"Bearer {serve.token}", "Content-Type": "application/json"}
    while True:
        with run.lock:
            i = next(nxt)
        if i >= len(plan):
            break
        due, kind, method, path, body = plan[i]
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        late = time.time() - due > LATE
        data = None if body is None else json.dumps(body(due)).encode()
        status = 0
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
            with run.lock:
                run.errors[f"{kind}: {type(exc).__name__}"] += 1
        took = time.time() - due
        with run.lock:
            run.samples.append(Sample(kind, due, took, late, status))
            if status and not 200 <= status < 300:
                run.errors[f"{kind}: HTTP {status}"] += 1
    conn.close()


def build_plan(
    serve: Serve, a: argparse.Namespace, t0: float, rng: random.Random
) -> list[tuple[float, str, str, str, Any]]:
    nodes = [n["name"] for n in serve.get("/api/v1/nodes")["nodes"]]
    # Filtered lists as people run them: a small pool, the nodes out of service.
    lists = ["/api/v1/nodes?pool=inference", "/api/v1/nodes?state=drained"]
    # The server's clock (simulated time) minus ours: reports are dated in its time.
    skew = datetime.fromisoformat(serve.get("/api/v1/overview")["now"]).timestamp() - time.time()
    kinds = [k for k, _ in MIXES[a.mix]]
    weights = [w for _, w in MIXES[a.mix]]
    plan = []
    for i in range(int(a.rate * a.duration)):
        kind = rng.choices(kinds, weights)[0]
        node = rng.choice(nodes)
        body: Any = None
        method = "GET"
        if kind == "report":
            fail = rng.random() < 0.02
            method, path = "POST", f"/api/v1/nodes/{node}/health"

            def body(due: float, fail: bool = fail) -> Any:
                at = datetime.fromtimestamp(due + skew, UTC) - timedelta(seconds=1)
                return report_body(at.isoformat(), fail)
        elif kind == "node":
            path = f"/api/v1/nodes/{node}"
        elif kind == "list":
            path = rng.choice(lists)
        elif kind == "events":
            path = rng.choice(["/api/v1/events?limit=50", f"/api/v1/events?node={node}"])
        elif kind == "healthz":
            path = "/healthz"
        else:
            path = "/api/v1/overview"
        plan.append((t0 + i / a.rate, kind, method, path, body))
    return plan


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))] if s else float("nan")


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def bench(a: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="api-load-bench-") as tmp:
        started = time.monotonic()
        serve = Serve(Path(tmp), a)
        stop = threading.Event()
        sweeps: dict[float, float] = {}
        try:
            serve.wait_ready(600.0)
            print(f"serve ready (first sweep done) after {time.monotonic() - started:.1f} s")
            time.sleep(a.warmup)
            watcher = threading.Thread(target=watch_sweeps, args=(serve.url, stop, sweeps))
            watcher.start()
            t0 = time.time() + 2.0
            plan = build_plan(serve, a, t0, random.Random(a.seed))
            load_before = os.getloadavg()[0]
            cpu_before = cpu_seconds(serve.proc.pid), time.process_time()
            split_before = cpu_by_process(serve.proc.pid)
            run = Run()
            nxt = iter(range(len(plan) + a.workers))
            threads: list[threading.Thread] = []
            for _ in range(a.workers):
                threads.append(threading.Thread(target=worker, args=(serve, plan, nxt, run)))
                threads[-1].start()
            for t in threads:
                t.join()
            t1 = time.time()
            load_after = os.getloadavg()[0]
            cpu = cpu_seconds(serve.proc.pid) - cpu_before[0], time.process_time() - cpu_before[1]
            split = {
                p: c - split_before.get(p, 0.0) for p, c in cpu_by_process(serve.proc.pid).items()
            }
            acting = split.pop(serve.proc.pid, 0.0)
            # Where serve's CPU went: the acting process (sweeps, attention, the world's
            # time) and each API worker.
            print(
                f"serve's CPU: acting {acting:.1f} s, workers",
                [round(c, 1) for c in split.values()],
            )
            time.sleep(0.5)
        finally:
            stop.set()
            serve.stop()
        if a.profile or a.probe:
            print(serve.log.read_text()[-12000:])
    during = sorted((end - d, end) for end, d in sweeps.items() if end > t0 and end - d < t1)
    load = (load_before, load_after)
    return {"run": run, "t0": t0, "t1": t1, "sweeps": during, "load": load, "cpu": cpu}


def summarise(a: argparse.Namespace, out: dict[str, Any]) -> str:
    run: Run = out["run"]
    lat = [s.latency for s in run.samples]
    sweeps = out["sweeps"]

    def in_sweep(due: float) -> bool:
        return any(s <= due <= e for s, e in sweeps)

    inside = [s.latency for s in run.samples if in_sweep(s.due)]
    outside = [s.latency for s in run.samples if not in_sweep(s.due)]
    late = sum(1 for s in run.samples if s.late)
    errors = sum(run.errors.values())
    served, sent = out["cpu"]
    took = out["t1"] - out["t0"]
    per = f"{served / len(lat) * 1e3:.1f} / {sent / len(lat) * 1e3:.1f} ms"
    print(f"{len(lat)} requests in {took:.1f} s, late {late}, errors {errors}; CPU a request")
    print(f"  serve / generator {per} (serve {served:.1f} s, generator {sent:.1f} s)")
    for k, n in run.errors.most_common():
        print(f"  error {k}: {n}")
    by_kind = []
    for kind, _ in MIXES[a.mix]:
        xs = [s.latency for s in run.samples if s.kind == kind]
        print(
            f"  {kind:9s} n={len(xs):5d} p50 {ms(pct(xs, 0.5))} p95 {ms(pct(xs, 0.95))} "
            f"p99 {ms(pct(xs, 0.99))} max {ms(max(xs, default=float('nan')))} ms"
        )
        by_kind.append(f"{kind} {ms(pct(xs, 0.99))}")
    allp = [pct(lat, q) for q in (0.5, 0.95, 0.99)] + [max(lat)]
    print("  all       p50/p95/p99/max " + " / ".join(ms(x) for x in allp) + " ms")
    print(f"  sweeps during the load: {len(sweeps)} {[round(e - s, 1) for s, e in sweeps]} s")
    print(f"  p99 due during a sweep (n={len(inside)}) {ms(pct(inside, 0.99))} ms, ", end="")
    print(f"outside (n={len(outside)}) {ms(pct(outside, 0.99))} ms")
    lb, la = out["load"]
    store = "PostgreSQL" if a.postgres else "SQLite"
    switch = f", switch {a.switch_ms:g} ms" if a.switch_ms else ""
    procs = f"{a.workers_api} API workers x " if a.workers_api else ""
    serving = f"{procs}{a.threads} threads{switch}"
    return (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {lb:.1f} / {la:.1f} | {store} | "
        f"{a.racks * a.nodes_per_rack:,} nodes ({a.racks}x{a.nodes_per_rack}) | "
        f"{a.sweep_interval:g} s | {a.mix} | {len(lat)} at {a.rate:g}/s for {a.duration:g} s, "
        f"{a.workers} connections; done in {took:.1f} s | {serving} | "
        f"{per} | {late} | {errors} | "
        f"{len(sweeps)} ({', '.join(f'{e - s:.1f}' for s, e in sweeps)}) | "
        f"{' / '.join(ms(x) for x in allp)} ms | {'; '.join(by_kind)} ms | "
        f"{ms(pct(inside, 0.99))} / {ms(pct(outside, 0.99))} ms | {a.note} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    for flag, kind, default in (
        ("--racks", int, 16), ("--nodes-per-rack", int, 64), ("--sweep-interval", float, 15.0),
        ("--rate", float, 200.0), ("--duration", float, 60.0), ("--workers", int, 64),
        ("--threads", int, 8), ("--switch-ms", float, None), ("--seed", int, 11),
        # serve --workers: API worker processes beside the acting one (0: one process).
        ("--workers-api", int, 0),
        # Seconds after the first sweep: past adoption (burn-ins launched on every node).
        ("--warmup", float, 40.0),
    ):  # fmt: skip
        p.add_argument(flag, type=kind, default=default)
    p.add_argument("--mix", choices=sorted(MIXES), default="api")
    p.add_argument("--postgres", help="a throw-away PostgreSQL database URL: emptied first")
    p.add_argument("--token", default=os.environ.get("COMPUTECTL_TOKEN"))
    p.add_argument("--profile", action="store_true", help="serve under serve_sampler.py")
    p.add_argument("--probe", type=Path, help="a directory: where serve's time went")
    p.add_argument("--code", type=Path, help="serve runs this tree's code (a checkout)")
    p.add_argument("--note", default="")
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    generator_gc = gc_pauses() if a.probe else []
    out = bench(a)
    row = summarise(a, out)
    if a.probe:
        samples = [(s.due, s.latency) for s in out["run"].samples]
        tail_report(a.probe, samples, out["t0"], out["t1"], generator_gc)
    if a.write:
        add_row(a.write, MARKER, SECTION, row)


if __name__ == "__main__":
    main()
