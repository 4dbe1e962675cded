"""The API under load while sweeps run: `computectl serve` on the embedded default (a
simulated datacenter), an open-loop mix of node reports and reads at a fixed rate.

    python benchmarks/api_load_bench.py [--racks 16 --nodes-per-rack 64] [--sweep-interval 15]
        [--rate 200] [--duration 60] [--workers 64] [--profile plain|write-lock|lock] [--write F]

Starts `computectl serve` as a process (a fresh data directory, no configuration file: the
embedded default with the fleet size and sweep interval given), waits for its first sweep,
then sends ``rate`` requests a second for ``duration`` seconds on a fixed schedule: request
i is due at t0 + i/rate whatever the server does (open loop, so a slow server cannot slow
the generator and hide its latency). Workers with one persistent HTTP connection each take
the next due request; latency is measured from the request's due time, so a request that
waited for a free worker counts its wait ("late": sent more than 5 ms after its due time).

The mix: node health reports (POST /api/v1/nodes/{node}/health, nine passive checks, 2 % of
them with a failing check) and reads (GET a node, a filtered node list, events, the overview).
A monitor reads the store's last_sweep record (read-only) to count the sweeps that ran during
the load and the requests due while one ran.

``--profile`` starts the serve through benchmarks/serve_sampler.py (a sampling profiler)
and prints where its threads spent their time when it stops.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

CLI = Path(sys.executable).parent / "computectl"
TOKEN = "api-load-bench"
LATE = 0.005
# Kind, share of requests. Reports dominate (every node posts its checks); people and tools
# read single nodes, short lists and events; the overview (every node of the fleet, 130 kB at
# 1,024 nodes) about once a second, as a few open overview pages polling would.
MIX: tuple[tuple[str, float], ...] = (
    ("report", 0.6), ("node", 0.3), ("list", 0.05), ("events", 0.045), ("overview", 0.005),
)  # fmt: skip
VBIOS = "96.00.89.00.01"
MARKER = "<!-- api load rows -->"
COLUMNS = (
    "date", "machine", "load avg before / after", "fleet", "sweep interval", "requests", "late",
    "errors", "sweeps during (s)", "p50 / p95 / p99 / max, all", "p99 by kind",
    "p99 due during a sweep / outside", "note",
)  # fmt: skip
SECTION = (
    """## The API under load while sweeps run (`benchmarks/api_load_bench.py`)

`computectl serve` as a process on the embedded default (simulated datacenter, SQLite, no
configuration file) with background sweeps; an open-loop generator on the same machine
sends a fixed schedule of requests (request i due at t0 + i/rate; latency counted from the
due time, so a request waiting for a free connection counts its wait; late = sent > 5 ms
after due). Mix: 60 % node health reports (nine passive checks, 2 % with a failing
check), 30 % GET a node, 5 % filtered node lists (the 64-node inference pool, the drained
nodes), 4.5 % events (the latest 50, or a node's), 0.5 % the overview (1/s).
Sweeps: those that ran during the load (from the store's last_sweep record).
Target (issue 11): p99 < 50 ms at 200 requests/s for 60 s while sweeps run."""
    + "\n\n| "
    + " | ".join(COLUMNS)
    + " |\n|"
    + "---|" * len(COLUMNS)
)


def report_body(at: str, fail: bool) -> list[dict[str, Any]]:
    """What `computectl node check` posts from a healthy 8-GPU node (a failing PCIe link
    if ``fail``)."""

    def r(check: str, values: dict[str, Any], status: str = "pass", **kw: Any) -> dict[str, Any]:
        return {"check": check, "version": "1", "status": status, "at": at, "values": values, **kw}

    pcie = {"pcie_links_narrow": 1 if fail else 0, "pcie_links_slow": 0}
    return [
        r("gpu_count", {"gpus_visible": 8, "gpus_expected": 8}),
        r("xid", {"xid_events": 0}),
        r("ecc", {"ecc_volatile_uncorrected": 0, "ecc_aggregate_uncorrected": 0}),
        r("nvlink", {"nvlink_crc_errors": 0, "nvlink_replay_errors": 0}),
        r("pcie", pcie, "fail", evidence="GPU 3: PCIe x8 (expected x16)", gpus=[3])
        if fail
        else r("pcie", pcie),
        r("throttle", {"gpus_hw_throttled": 0, "gpus_sw_thermal": 0}),
        r("temperature", {"temperature_max_celsius": 61.0}),
        r("infiniband", {"ib_ports": 8, "ib_ports_down": 0, "ib_ports_slow": 0}),
        r(
            "versions",
            {"driver_version": "550.90", "cuda_version": "12.4", "vbios_versions": VBIOS},
        ),
    ]


@dataclass
class Sample:
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


class Serve:
    """`computectl serve` as a process on the embedded default."""

    def __init__(
        self, data_dir: Path, racks: int, per_rack: int, interval: float, prof: str | None
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
        env.update(
            COMPUTECTL_DATA_DIR=str(data_dir),
            COMPUTECTL_SERVER__API_TOKEN=TOKEN,
            COMPUTECTL_SIMULATION__RACKS=str(racks),
            COMPUTECTL_SIMULATION__NODES_PER_RACK=str(per_rack),
            COMPUTECTL_SWEEP__INTERVAL_SECONDS=str(interval),
        )
        self.db = data_dir / "computectl.db"
        self.log = data_dir / "serve.log"
        argv = [str(CLI), "serve", "--port", str(self.port)]
        if prof:
            argv = [sys.executable, str(Path(__file__).with_name("serve_sampler.py")), *argv[1:]]
            env.update(
                BENCH_WRITE_LOCK=str(int("lock" in prof)), BENCH_SAMPLE=str(int(prof != "lock"))
            )
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if self.get("/readyz").get("status") == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("timed out waiting for serve's first sweep")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def watch_sweeps(db: Path, stop: threading.Event, seen: dict[float, float]) -> None:
    """Every sweep's (end wall time: duration), from the store's last_sweep record."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        while not stop.wait(0.2):
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'last_sweep'").fetchone()
            except sqlite3.Error:
                continue
            if row:
                v = json.loads(row[0]) if isinstance(row[0], str) else row[0]
                seen[float(v["wall_at"])] = float(v["duration_seconds"])


def worker(port: int, plan: list[tuple[float, str, str, str, Any]], nxt: Any, run: Run) -> None:
    """Take the next due request, wait for its time, send it on this worker's connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
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
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with run.lock:
                run.errors[f"{kind}: {type(exc).__name__}"] += 1
        took = time.time() - due
        with run.lock:
            run.samples.append(Sample(kind, due, took, late, status))
            if status and not 200 <= status < 300:
                run.errors[f"{kind}: HTTP {status}"] += 1
    conn.close()


def build_plan(
    serve: Serve, rate: float, duration: float, t0: float, rng: random.Random
) -> list[tuple[float, str, str, str, Any]]:
    nodes = [n["name"] for n in serve.get("/api/v1/nodes")["nodes"]]
    # Filtered lists as people run them: a small pool, the nodes out of service.
    lists = ["/api/v1/nodes?pool=inference", "/api/v1/nodes?state=drained"]
    # The server's clock (simulated time) minus ours: reports are dated in its time.
    skew = datetime.fromisoformat(serve.get("/api/v1/overview")["now"]).timestamp() - time.time()
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    plan = []
    for i in range(int(rate * duration)):
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
        else:
            path = "/api/v1/overview"
        plan.append((t0 + i / rate, kind, method, path, body))
    return plan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))] if s else float("nan")


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def bench(a: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="api-load-bench-") as tmp:
        started = time.monotonic()
        serve = Serve(Path(tmp), a.racks, a.nodes_per_rack, a.sweep_interval, a.profile)
        stop = threading.Event()
        sweeps: dict[float, float] = {}
        try:
            serve.wait_ready(600.0)
            print(f"serve ready (first sweep done) after {time.monotonic() - started:.1f} s")
            # Past adoption (burn-in launches on every node that never passed one): steady.
            time.sleep(a.warmup)
            watcher = threading.Thread(target=watch_sweeps, args=(serve.db, stop, sweeps))
            watcher.start()
            t0 = time.time() + 2.0
            plan = build_plan(serve, a.rate, a.duration, t0, random.Random(a.seed))
            load_before = os.getloadavg()[0]
            cpu_before = cpu_seconds(serve.proc.pid), os.times()
            run = Run()
            nxt = iter(range(len(plan) + a.workers))
            threads = [
                threading.Thread(target=worker, args=(serve.port, plan, nxt, run))
                for _ in range(a.workers)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            t1 = time.time()
            load_after = os.getloadavg()[0]
            mine = os.times()
            cpu = (
                cpu_seconds(serve.proc.pid) - cpu_before[0],
                mine.user + mine.system - cpu_before[1].user - cpu_before[1].system,
            )
            time.sleep(0.5)
        finally:
            stop.set()
            serve.stop()
        if a.profile and a.profile != "lock":
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
    print(f"{len(lat)} requests in {took:.1f} s ({len(lat) / took:.0f}/s), late {late}")
    print(f"  CPU: serve {served:.1f} s ({served / len(lat) * 1e3:.1f} ms a request), ", end="")
    print(f"generator {sent:.1f} s; errors {errors}")
    for k, n in run.errors.most_common():
        print(f"  error {k}: {n}")
    by_kind = []
    for kind, _ in MIX:
        xs = [s.latency for s in run.samples if s.kind == kind]
        print(
            f"  {kind:9s} n={len(xs):5d} p50 {ms(pct(xs, 0.5))} p95 {ms(pct(xs, 0.95))} "
            f"p99 {ms(pct(xs, 0.99))} max {ms(max(xs, default=float('nan')))} ms"
        )
        by_kind.append(f"{kind} {ms(pct(xs, 0.99))}")
    allp = [pct(lat, q) for q in (0.5, 0.95, 0.99)] + [max(lat)]
    print("  all       p50/p95/p99/max " + " / ".join(ms(x) for x in allp) + " ms")
    print(
        f"  sweeps during the load: {len(sweeps)} " + ", ".join(f"{e - s:.1f} s" for s, e in sweeps)
    )
    print(
        f"  due during a sweep: n={len(inside)} p99 {ms(pct(inside, 0.99))} ms; "
        f"outside: n={len(outside)} p99 {ms(pct(outside, 0.99))} ms"
    )
    lb, la = out["load"]
    return (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {lb:.1f} / {la:.1f} | "
        f"{a.racks * a.nodes_per_rack:,} nodes ({a.racks}x{a.nodes_per_rack}) | "
        f"{a.sweep_interval:g} s | {len(lat)} at {a.rate:g}/s for {a.duration:g} s, "
        f"{a.workers} connections; done in {took:.1f} s; serve CPU "
        f"{served / len(lat) * 1000:.1f} ms a request | {late} | {errors} | "
        f"{len(sweeps)} ({', '.join(f'{e - s:.1f}' for s, e in sweeps)}) | "
        f"{' / '.join(ms(x) for x in allp)} ms | {'; '.join(by_kind)} ms | "
        f"{ms(pct(inside, 0.99))} / {ms(pct(outside, 0.99))} ms | {a.note} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--racks", type=int, default=16)
    p.add_argument("--nodes-per-rack", type=int, default=64)
    p.add_argument("--sweep-interval", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--warmup", type=float, default=40.0, help="seconds after the first sweep")
    p.add_argument(
        "--profile",
        choices=["plain", "write-lock", "lock"],
        help="serve under serve_sampler.py: sampled; sampled + write lock; write lock alone",
    )
    p.add_argument("--note", default="")
    p.add_argument("--write", type=Path)
    a = p.parse_args()
    row = summarise(a, bench(a))
    if a.write:
        add_row(a.write, MARKER, SECTION, row)


if __name__ == "__main__":
    main()
