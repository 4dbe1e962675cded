"""How long `computectl` takes to start, as a process, beside the system's own floor.

    python benchmarks/cli_start_bench.py [--runs 15] [--root DIR] [--label after]
                                         [--write benchmarks/RESULTS.md]

Times, as whole processes (median of --runs): `python -c pass` and `sinfo --version` (the
floor any command line pays here; sinfo reads SLURM_CONF), `computectl --help`, and
`computectl nodes list` over a data directory holding one swept simulated fleet. `--root`
measures another checkout of the code (e.g. one unpacked with `git archive <commit>`) with
the same interpreter, for a before/after pair.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

MARKER = "<!-- cli start rows -->"
SECTION = """
## CLI start-up (`benchmarks/cli_start_bench.py`)

Target: `computectl --help` and `computectl nodes list` in < 0.5 s. Whole processes, median of
N runs; `python -c pass` and `sinfo --version` are the floor any command pays on the machine.
`nodes list` reads a data directory holding one swept simulated fleet.

| date | machine | code | python -c pass | sinfo --version | --help | nodes list | runs | note |
|---|---|---|---|---|---|---|---|---|
"""
# The console script's own start, without relying on which checkout is installed.
ENTRY = "import sys; from compute.cli.main import main; sys.argv[0] = 'computectl'; main()"


def median_seconds(argv: list[str], runs: int, env: dict[str, str], cwd: Path) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        # A command that fails gives no figure (its error would look fast).
        subprocess.run(
            argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sinfo_seconds(runs: int, env: dict[str, str], cwd: Path) -> float | None:
    """None without a usable sinfo (it needs a slurm.conf: set SLURM_CONF)."""
    if shutil.which("sinfo") is None:
        return None
    probe = subprocess.run(["sinfo", "--version"], env=env, capture_output=True)
    ok = probe.returncode == 0
    return median_seconds(["sinfo", "--version"], runs, env, cwd) if ok else None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--root", type=Path, default=ROOT, help="The checkout whose CLI is timed.")
    p.add_argument("--label", default="", help="What --root is (a commit, 'before', ...).")
    p.add_argument("--write", type=Path)
    p.add_argument("--note", default="")
    args = p.parse_args()

    # `python -c` puts the working directory first on sys.path: run in the checkout timed.
    root = args.root.resolve()
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("COMPUTECTL_CONFIG", None)
    cli = [sys.executable, "-c", ENTRY]
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        data = ["--data-dir", tmp]
        subprocess.run(
            [*cli, *data, "sweep"], env=env, cwd=root, check=True, stdout=subprocess.DEVNULL
        )
        figures = {
            "python -c pass": median_seconds([sys.executable, "-c", "pass"], args.runs, env, root),
            "sinfo --version": sinfo_seconds(args.runs, env, root),
            "computectl --help": median_seconds([*cli, "--help"], args.runs, env, root),
            "computectl nodes list": median_seconds(
                [*cli, *data, "nodes", "list"], args.runs, env, root
            ),
        }
    for name, secs in figures.items():
        print(f"{name:<24} {'-' if secs is None else f'{secs:.3f} s'}")
    if args.write:
        cells = " | ".join("-" if s is None else f"{s:.3f} s" for s in figures.values())
        row = (
            f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {args.label or args.root.name} | "
            f"{cells} | {args.runs} | {args.note} |"
        )
        add_row(args.write, MARKER, SECTION, row)


if __name__ == "__main__":
    main()
