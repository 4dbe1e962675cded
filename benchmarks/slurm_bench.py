"""Drain and resume every node of a real Slurm test cluster through the Slurm backend.

    python benchmarks/slurm_bench.py --nodes 256 [--write benchmarks/RESULTS.md]

Brings up a testenv/slurm cluster of its own (state dir and ports apart from
the developer's and the tests' clusters), times node listing and drain/resume
of all nodes, once with one scontrol call per node (what `drain`/`resume`
do) and once with one scontrol call for all (`drain_many`/`resume_many`),
checks each round took effect, and stops the cluster if it started it.

    python benchmarks/slurm_bench.py --nodes 16 --cli [--write benchmarks/RESULTS.md]

times the CLI instead, as a process: `computectl nodes drain|resume gpu-[001-016]` (one
scontrol call for all), against the same one node per process, and against
`scontrol update nodename=<hostlist>` itself, on the same cluster in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
CLI_MARKER = "<!-- slurm cli rows -->"
CLI = Path(sys.executable).parent / "computectl"


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


def check(wm: SlurmWorkloadManager, names: list[str], drained: bool, reason: str = REASON) -> None:
    """Every node drained with ``reason``, or none drained (waits out Slurm's idle* moment)."""
    deadline = time.monotonic() + 30
    while True:
        nodes = {n.name: n for n in wm.list_nodes()}
        ok = all(
            nodes[n].drain == drained and (not drained or nodes[n].reason == reason) for n in names
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


CLI_SECTION = """
## Many nodes from the CLI (`benchmarks/slurm_bench.py --cli`)

`computectl nodes drain gpu-[001-N] --reason R` and `nodes resume gpu-[001-N] --skip-burn-in`
as processes on a real Slurm 22.05 test cluster (each: one `scontrol update` for all nodes, one
event and audit entry per node), against one process per node (what the CLI took before it took
many), and against `scontrol update nodename=gpu-[001-N] state=drain|resume` alone.

| date | machine | nodes | drain, CLI hostlist | resume, CLI hostlist | drain, CLI per node \
| resume, CLI per node | drain, scontrol hostlist | resume, scontrol hostlist | note |
|---|---|---|---|---|---|---|---|---|---|
"""


def cli_rounds(state_dir: Path, wm: SlurmWorkloadManager, names: list[str]) -> dict[str, object]:
    """The CLI as operators run it, against scontrol alone, on the same nodes."""
    hostlist = (
        f"{names[0].rsplit('-', 1)[0]}-[{names[0].rsplit('-', 1)[1]}-{names[-1].rsplit('-', 1)[1]}]"
    )
    data_dir = state_dir / "bench-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    config = state_dir / "bench-computectl.toml"
    # Idle nodes go straight into service and no periodic burn-in takes any out.
    config.write_text(
        (state_dir / "computectl.toml")
        .read_text()
        .replace('new_nodes = "in_service"', 'new_nodes = "in_service"\nperiodic_burn_in_days = 0')
    )
    env = {**os.environ, "SLURM_CONF": str(state_dir / "slurm.conf")}

    def cli(*args: str) -> None:
        cmd = [str(CLI), "--config", str(config), "--data-dir", str(data_dir), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr}")

    def scontrol(*args: str) -> None:
        subprocess.run(["scontrol", "update", f"nodename={hostlist}", *args], check=True, env=env)

    cli("sweep")
    r: dict[str, object] = {"nodes": len(names)}
    r["cli_drain_seconds"] = timed(
        lambda: cli("nodes", "drain", hostlist, "--reason", "bench: drain all")
    )
    check(wm, names, drained=True, reason="computectl: operator: bench: drain all")
    r["cli_resume_seconds"] = timed(lambda: cli("nodes", "resume", hostlist, "--skip-burn-in"))
    check(wm, names, drained=False)

    def drain_each() -> None:
        for n in names:
            cli("nodes", "drain", n, "--reason", "bench: drain all")

    def resume_each() -> None:
        for n in names:
            cli("nodes", "resume", n, "--skip-burn-in")

    r["cli_drain_each_seconds"] = timed(drain_each)
    check(wm, names, drained=True, reason="computectl: operator: bench: drain all")
    r["cli_resume_each_seconds"] = timed(resume_each)
    check(wm, names, drained=False)
    r["scontrol_drain_seconds"] = timed(lambda: scontrol("state=drain", f"reason={REASON}"))
    check(wm, names, drained=True)
    r["scontrol_resume_seconds"] = timed(lambda: scontrol("state=resume"))
    check(wm, names, drained=False)
    return r


def write_cli(path: Path, r: dict[str, object]) -> None:
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {r['machine']} | {r['nodes']} | "
        f"{r['cli_drain_seconds']} s | {r['cli_resume_seconds']} s | "
        f"{r['cli_drain_each_seconds']} s | {r['cli_resume_each_seconds']} s | "
        f"{r['scontrol_drain_seconds']} s | {r['scontrol_resume_seconds']} s | {r['note']} |"
    )
    add_row(path, CLI_MARKER, CLI_SECTION, row)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=256)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    p.add_argument("--write", type=Path)
    p.add_argument("--note", default="")
    p.add_argument("--cli", action="store_true", help="Time the CLI as a process (see above).")
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
        if a.cli:
            c = cli_rounds(a.state_dir, wm, names)
            c["machine"], c["note"] = machine(), a.note
            for k, v in c.items():
                print(f"{k}: {v}")
            if a.write:
                write_cli(a.write, c)
            return
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
