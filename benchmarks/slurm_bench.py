"""Drain and resume every node of a real Slurm test cluster through the Slurm backend.

    python benchmarks/slurm_bench.py --nodes 256 [--write benchmarks/RESULTS.md]

Brings up a testenv/slurm cluster of its own (state dir and ports apart from
the developer's and the tests' clusters), times node listing and drain/resume
of all nodes, once with one scontrol call per node (what `drain`/`resume`
do) and once with one scontrol call for all (`drain_many`/`resume_many`),
checks each round took effect, and stops the cluster if it started it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402
from scheduler.slurm import SlurmWorkloadManager  # noqa: E402

SCRIPT = ROOT / "testenv" / "slurm"
STATE_DIR = Path.home() / ".cache" / "computectl" / "testenv" / "slurm-bench"
PORT_BASE = 20000
REASON = "computectl: bench: drain all"
MARKER = "<!-- slurm rows -->"


def run_testenv(
    state_dir: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(SCRIPT), "--state-dir", str(state_dir), *args], capture_output=True, text=True
    )
    if check and proc.returncode:
        raise SystemExit(f"testenv/slurm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 3)


def check(wm: SlurmWorkloadManager, names: list[str], drained: bool) -> None:
    """Every node drained with our reason, or none drained (waits out Slurm's idle* moment)."""
    deadline = time.monotonic() + 30
    while True:
        nodes = {n.name: n for n in wm.list_nodes()}
        ok = all(
            nodes[n].drain == drained and (not drained or nodes[n].reason == REASON) for n in names
        )
        if ok:
            return
        if time.monotonic() > deadline:
            bad = [n for n in names if nodes[n].drain != drained][:5]
            raise SystemExit(f"nodes not {'drained' if drained else 'resumed'}: {bad}")
        time.sleep(0.2)


def write(path: Path, r: dict[str, object]) -> None:
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {r['machine']} | {r['nodes']} | {r['up_seconds']} s | "
        f"{r['list_seconds']} s | {r['drain_each_seconds']} s | {r['resume_each_seconds']} s | "
        f"{r['drain_batch_seconds']} s | {r['resume_batch_seconds']} s | {r['note']} |"
    )
    add_row(path, MARKER, SECTION, row)


SECTION = """
## Slurm backend (`benchmarks/slurm_bench.py`)

Drain and resume of every node of a real Slurm 22.05 test cluster (testenv/slurm, one slurmd per
node on the same machine) through `SlurmWorkloadManager`: one scontrol per node
(`drain`/`resume`) vs. one scontrol for all (`drain_many`/`resume_many`). `list` =
`list_nodes()` (sinfo --json + squeue --json).

| date | machine | nodes | cluster up | list | drain, per node | resume, per node \
| drain, one call | resume, one call | note |
|---|---|---|---|---|---|---|---|---|---|
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=256)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    p.add_argument("--write", type=Path)
    p.add_argument("--note", default="")
    a = p.parse_args()

    was_up = run_testenv(a.state_dir, "status", check=False).returncode == 0
    t0 = time.perf_counter()
    up = ["up", "--nodes", str(a.nodes), "--port-base", str(a.port_base), "--timeout", "600"]
    run_testenv(a.state_dir, *up)
    up_seconds = round(time.perf_counter() - t0, 1)
    try:
        wm = SlurmWorkloadManager.create(
            {"training": "training", "inference": "inference"},
            slurm_conf=a.state_dir / "slurm.conf",
            timeout_seconds=120,
        )
        names = sorted(n.name for n in wm.list_nodes())
        assert len(names) == a.nodes, f"{len(names)} nodes listed, {a.nodes} expected"
        r: dict[str, object] = {"nodes": len(names), "up_seconds": up_seconds}
        r["list_seconds"] = min(timed(wm.list_nodes) for _ in range(3))

        def drain_each() -> None:
            for n in names:
                wm.drain(n, REASON)

        def resume_each() -> None:
            for n in names:
                wm.resume(n)

        r["drain_each_seconds"] = timed(drain_each)
        check(wm, names, drained=True)
        r["resume_each_seconds"] = timed(resume_each)
        check(wm, names, drained=False)

        r["drain_batch_seconds"] = timed(lambda: wm.drain_many(names, REASON))
        check(wm, names, drained=True)
        r["resume_batch_seconds"] = timed(lambda: wm.resume_many(names))
        check(wm, names, drained=False)
    finally:
        if not was_up:
            run_testenv(a.state_dir, "down", check=False)
    r["machine"] = machine()
    r["note"] = a.note
    for k, v in r.items():
        print(f"{k}: {v}")
    if a.write:
        write(a.write, r)


if __name__ == "__main__":
    main()
