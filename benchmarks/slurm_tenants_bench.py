"""Many tenants on a real Slurm test cluster, as the product runs it, beside Slurm's own tool.

    python benchmarks/slurm_tenants_bench.py [--tenants 1000] [--state-dir DIR --port-base N]

Brings up a testenv/slurm cluster with a fresh accounting database (``up --fresh``: it
throws away the state of the cluster in --state-dir), writes N tenant specs (user root, 8 GPUs in
training, a GPU-hour budget and a wall-time limit each) to a directory, and times in one run:

* the reference: Slurm's own tools making the same tree at their fastest — one
  ``sacctmgr -i add qos`` of all N QOS (same limits) and one ``sacctmgr -i load`` of a file
  with the N accounts and associations; then the same load again (nothing to change);
* the product: ``computectl tenants apply DIR`` as a process (CLI start, spec files, the
  store and its audit, the Slurm reads and writes), then the same again unchanged, and
  ``computectl tenants plan DIR``.

Each side starts from a fresh accounting database (deleting 1,000 accounts with sacctmgr
takes minutes). Prints a Markdown row (the load average before and after each side, as the
machine is shared).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.slurm.commands import SlurmCommands  # noqa: E402
from scheduler.slurm.shares import node_shapes, pool_share  # noqa: E402

SCRIPT = ROOT / "testenv" / "slurm"
COMPUTECTL = Path(sys.executable).parent / "computectl"
STATE_DIR = Path.home() / ".cache" / "computectl" / "testenv" / "slurm-tenants-bench"
PORT_BASE = 20200
GPUS, BUDGET_HOURS, WALL_MINUTES = 8, 100, 24 * 60


def run_testenv(state_dir: Path, *args: str, check: bool = True) -> int:
    proc = subprocess.run(
        [str(SCRIPT), "--state-dir", str(state_dir), *args], capture_output=True, text=True
    )
    if check and proc.returncode:
        raise SystemExit(f"testenv/slurm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc.returncode


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def checked(argv: Sequence[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} ... exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    args = p.parse_args()
    n = args.tenants
    names = [f"bench-{i:04d}" for i in range(n)]

    was_up = run_testenv(args.state_dir, "status", check=False) == 0
    up = ("up", "--fresh", "--nodes", "8", "--port-base", str(args.port_base))
    run_testenv(args.state_dir, *up[:1], *up[2:])  # --fresh wants a cluster it made
    run_testenv(args.state_dir, *up)
    slurm_conf = args.state_dir / "slurm.conf"
    env = {**os.environ, "SLURM_CONF": str(slurm_conf), "NO_COLOR": "1"}
    commands = SlurmCommands(slurm_conf=slurm_conf, timeout_seconds=1800)
    work = Path(tempfile.mkdtemp(prefix="slurm-tenants-bench-"))
    loads: list[float] = []
    try:
        load_file = work / "tree.cfg"
        load_file.write_text(load_text(commands, names))
        share = pool_share(node_shapes(commands.sinfo_json(), "training"), "training")
        add_qos = reference_qos(names, share.limits(GPUS))
        loads.append(os.getloadavg()[0])
        t_ref = timed(lambda: (checked(add_qos, env), checked(sacctmgr_load(load_file), env)))
        t_ref_again = timed(lambda: checked(sacctmgr_load(load_file), env))
        loads.append(os.getloadavg()[0])

        run_testenv(args.state_dir, *up)
        specs = work / "tenants"
        specs.mkdir()
        for name in names:
            (specs / f"{name}.toml").write_text(spec_toml(name))
        config = work / "computectl.toml"
        config.write_text(
            f'data_dir = "{work / "data"}"\n' + (args.state_dir / "computectl.toml").read_text()
        )
        cli_env = {**env, "COMPUTECTL_CONFIG": str(config)}
        apply = [str(COMPUTECTL), "tenants", "apply", str(specs)]
        out: list[str] = []
        loads.append(os.getloadavg()[0])
        t_create = timed(lambda: out.append(checked(apply, cli_env)))
        assert f"{n} tenant(s) applied: {n} with changes, 0 unchanged" in out[-1], out[-1][-500:]
        t_again = timed(lambda: out.append(checked(apply, cli_env)))
        assert f"{n} tenant(s) applied: 0 with changes, {n} unchanged" in out[-1], out[-1][-500:]
        plan = [str(COMPUTECTL), "tenants", "plan", str(specs)]
        t_plan = timed(lambda: out.append(checked(plan, cli_env)))
        assert f"{n} tenant(s) planned: 0 with changes, {n} unchanged" in out[-1]
        loads.append(os.getloadavg()[0])
        run_testenv(args.state_dir, *up)  # the next user of this cluster finds it empty
    finally:
        if not was_up:
            run_testenv(args.state_dir, "down", check=False)

    def cell(total: float) -> str:
        return f"{total:.1f} s ({total / n * 1000:.1f} ms each)"

    print(
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load {loads[0]:.1f}/{loads[1]:.1f} (reference), "
        f"{loads[2]:.1f}/{loads[3]:.1f} (computectl) | {n} "
        f"| {cell(t_ref)} | {cell(t_ref_again)} | {cell(t_create)} ({t_create / t_ref:.1f} x) "
        f"| {cell(t_again)} | {cell(t_plan)} |"
    )


def spec_toml(name: str) -> str:
    return (
        f'[tenant]\nname = "{name}"\nusers = ["root"]\ngpu_hours_budget = {BUDGET_HOURS}\n'
        f"max_wall_time_hours = {WALL_MINUTES // 60}\n"
        f'[[tenant.quotas]]\npool = "training"\ngpus = {GPUS}\n'
    )


def reference_qos(names: list[str], share: dict[str, str]) -> list[str]:
    tres = {"gres/gpu": str(GPUS), "gres/gpu:h100": str(GPUS), **share}
    return [
        "sacctmgr", "-i", "add", "qos", ",".join(f"{t}-training" for t in names),
        "Description=computectl: tenants in pool training",
        "GrpTRES=" + ",".join(f"{k}={v}" for k, v in sorted(tres.items())),
        "MinTRESPerJob=gres/gpu=1", f"MaxWall={WALL_MINUTES}",
    ]  # fmt: skip


def sacctmgr_load(path: Path) -> list[str]:
    return ["sacctmgr", "-i", "load", f"file={path}"]


def load_text(commands: SlurmCommands, names: list[str]) -> str:
    cluster = next(
        ln.split("=", 1)[1].strip()
        for ln in commands.run("scontrol", "show", "config").splitlines()
        if ln.split("=", 1)[0].strip() == "ClusterName"
    )
    lines = [f"Cluster - '{cluster}'", "Parent - 'root'"]
    lines += [
        f"Account - '{t}':Description='computectl: tenant {t}':Organization='computectl'"
        f":GrpTRESMins='gres/gpu={BUDGET_HOURS * 60}'"
        for t in names
    ]
    for t in names:
        lines += [
            f"Parent - '{t}'",
            f"User - 'root':Partition='training':QOS='{t}-training':DefaultQOS='{t}-training'",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
