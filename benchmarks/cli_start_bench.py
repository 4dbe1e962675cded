"""How long `computectl` takes to start, as a process, beside the system's own floor.

    python benchmarks/cli_start_bench.py [--runs 15] [--root DIR] [--label after]
                                         [--write benchmarks/RESULTS.md]

Times, as whole processes (median of --runs): `python -c pass` and `sinfo --version` (the
floor any command line pays here; sinfo reads SLURM_CONF), `computectl --help`,
`computectl nodes list` over a data directory holding one swept simulated fleet (the fast
read, compute/client/sqlite_reads.py, where the checkout has it), the same with a setting in
the environment (the full path: settings, SQLAlchemy, the store), and
`computectl --server URL nodes list` against a `computectl serve` on that directory (with an
operator's token). `--root` measures another checkout of the code (e.g. one unpacked with
`git archive <commit>`) with the same interpreter, for a before/after pair. The row's note
gets the full path's figure, each command's CPU time (user + system, less inflated than the
wall clock on a machine others load) and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import add_row, machine  # noqa: E402

# Rows go to this section (the older one, without the remote figure, stays as it was).
REMOTE_MARKER = "<!-- cli start remote rows -->"
_INTRO = """
## CLI start-up, on the data directory and through a server (`benchmarks/cli_start_bench.py`)

Target: `computectl nodes list` in < 0.5 s. Whole processes, median of N runs, beside
`python -c pass`. Local: `nodes list` on a data directory holding one swept simulated fleet
(settings, SQLAlchemy, the store). Remote: `computectl --server URL nodes list` against
`computectl serve` on that directory, with an operator's token (click, urllib and json only).

"""
COLUMNS = (
    "date",
    "machine",
    "code",
    "python -c pass",
    "--help",
    "nodes list (local)",
    "nodes list (--server)",
    "runs",
    "note",
)
REMOTE_SECTION = _INTRO + "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
# A setting the fast read does not read, at its default: `nodes list` takes the full path.
FULL_PATH = {"COMPUTECTL_SWEEP__INTERVAL_SECONDS": "60"}
# The console script's own start, without relying on which checkout is installed.
ENTRY = "import sys; from compute.cli.main import main; sys.argv[0] = 'computectl'; main()"


class Timing(NamedTuple):
    """Medians of one command's runs: wall-clock seconds, and the CPU seconds (user + system)
    the process used, which a machine busy with others' work inflates far less."""

    wall: float
    cpu: float


def median_seconds(argv: list[str], runs: int, env: dict[str, str], cwd: Path) -> Timing:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        # A command that fails gives no figure (its error would look fast).
        subprocess.run(
            argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return Timing(statistics.median(walls), statistics.median(cpus))


def sinfo_seconds(runs: int, env: dict[str, str], cwd: Path) -> Timing | None:
    """None without a usable sinfo (it needs a slurm.conf: set SLURM_CONF)."""
    if shutil.which("sinfo") is None:
        return None
    probe = subprocess.run(["sinfo", "--version"], env=env, capture_output=True)
    ok = probe.returncode == 0
    return median_seconds(["sinfo", "--version"], runs, env, cwd) if ok else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# An operator's token in the store, made by the checkout timed (this one's store code may
# be at another schema revision, which the other's serve would refuse); nothing printed
# where that checkout's API takes no tokens.
TOKEN = """
import sys
try:
    from compute.auth.testing import token_for
except ImportError:
    sys.exit(0)
from compute.config import load_settings
from compute.store import Store

store = Store.open(load_settings(None, env={"COMPUTECTL_DATA_DIR": sys.argv[1]}).sqlalchemy_url)
try:
    print(token_for(store, "operator", name="cli-start-bench"))
finally:
    store.close()
"""


def _token(data_dir: str, env: dict[str, str], cwd: Path) -> str | None:
    made = subprocess.run(
        [sys.executable, "-c", TOKEN, data_dir],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip() or None


@contextmanager
def serving(cli: list[str], data: list[str], env: dict[str, str], cwd: Path) -> Iterator[str]:
    """`computectl serve` on the data directory (one sweep at start, then none); its URL."""
    port = _free_port()
    quiet = {**env, "COMPUTECTL_SWEEP__INTERVAL_SECONDS": "86400"}
    proc = subprocess.Popen(
        [*cli, *data, "serve", "--port", str(port)],
        env=quiet,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


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
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        data = ["--data-dir", tmp]
        subprocess.run(
            [*cli, *data, "sweep"], env=env, cwd=root, check=True, stdout=subprocess.DEVNULL
        )
        figures: dict[str, Timing | None] = {
            "python -c pass": median_seconds([sys.executable, "-c", "pass"], args.runs, env, root),
            "sinfo --version": sinfo_seconds(args.runs, env, root),
            "computectl --help": median_seconds([*cli, "--help"], args.runs, env, root),
            "computectl nodes list": median_seconds(
                [*cli, *data, "nodes", "list"], args.runs, env, root
            ),
            "computectl nodes list (full path)": median_seconds(
                [*cli, *data, "nodes", "list"], args.runs, {**env, **FULL_PATH}, root
            ),
        }
        token = _token(tmp, env, root)
        with serving(cli, data, env, root) as url:
            remote_env = {**env, **({"COMPUTECTL_TOKEN": token} if token else {})}
            figures["computectl --server URL nodes list"] = median_seconds(
                [*cli, "--server", url, "nodes", "list"], args.runs, remote_env, root
            )
    load = f"load average {_load(load_before)} before, {_load(os.getloadavg())} after"
    for name, t in figures.items():
        shown = "-" if t is None else f"{t.wall:.3f} s (CPU {t.cpu:.3f} s)"
        print(f"{name:<36} {shown}")
    print(load)
    if args.write:
        code = args.label or args.root.name
        head = f"| {datetime.now(UTC):%Y-%m-%d} | {machine()} | {code} | "
        full = _cells([figures["computectl nodes list (full path)"]])
        cpu = ", ".join(
            f"{name.removeprefix('computectl ')} {t.cpu:.3f} s"
            for name, t in figures.items()
            if t is not None and name != "sinfo --version"
        )
        note = "; ".join(
            n for n in (args.note, f"full path {full}", f"CPU (user+sys): {cpu}", load) if n
        )
        tail = f" | {args.runs} | {note} |"
        names = ("python -c pass", "computectl --help", "computectl nodes list")
        cells = [figures[n] for n in (*names, "computectl --server URL nodes list")]
        add_row(args.write, REMOTE_MARKER, REMOTE_SECTION, head + _cells(cells) + tail)


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{a:.1f}" for a in avg)


def _cells(figures: list[Timing | None]) -> str:
    return " | ".join("-" if t is None else f"{t.wall:.3f} s" for t in figures)


if __name__ == "__main__":
    main()
