"""Plan, apply and re-apply many tenants on a real Slurm test cluster through `SlurmTenants`.

    python benchmarks/slurm_tenants_bench.py [--tenants 100]

Brings up a testenv/slurm cluster of its own (state dir and ports apart from the
developer's and the tests' clusters), then for N tenants (user root, 8 GPUs in
training, a GPU-hour budget and a wall-time limit each): plans each (all CREATE),
applies each (qos, account, association: sacctmgr add), re-applies each unchanged
(must change nothing: the live state is read back and matches), and deletes them
all. Prints a Markdown table row; stops the cluster if it started it.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.slurm.commands import SlurmCommands  # noqa: E402
from scheduler.slurm.tenants import SlurmTenants  # noqa: E402
from scheduler.tenants import GpuQuota, TenantSpec  # noqa: E402

SCRIPT = ROOT / "testenv" / "slurm"
STATE_DIR = Path.home() / ".cache" / "computectl" / "testenv" / "slurm-tenants-bench"
PORT_BASE = 20200


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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=100)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--port-base", type=int, default=PORT_BASE)
    args = p.parse_args()

    was_up = run_testenv(args.state_dir, "status", check=False) == 0
    t_up = timed(
        lambda: run_testenv(
            args.state_dir, "up", "--nodes", "8", "--port-base", str(args.port_base)
        )
    )
    try:
        tenants = SlurmTenants(
            SlurmCommands(slurm_conf=args.state_dir / "slurm.conf"),
            {"training": "training", "inference": "inference"},
        )
        for name in tenants.managed():  # left over from an interrupted run
            tenants.delete(name, force=True, grace_seconds=0)
        specs = [
            TenantSpec(
                f"bench-{i:04d}",
                ("root",),
                (GpuQuota("training", "H100-SXM", 8),),
                gpu_hours_budget=100.0,
                max_wall_time_minutes=24 * 60,
            )
            for i in range(args.tenants)
        ]
        n = len(specs)
        plans: list[int] = []
        t_plan = timed(lambda: plans.extend(len(tenants.plan(s)) for s in specs))
        assert plans == [3] * n, plans
        t_apply = timed(lambda: [tenants.apply(s) for s in specs])
        again: list[int] = []
        t_reapply = timed(lambda: again.extend(len(tenants.apply(s)) for s in specs))
        assert again == [0] * n, "an unchanged re-apply changed something"
        assert len(tenants.managed()) == n
        t_delete = timed(lambda: [tenants.delete(s.name) for s in specs])
        assert tenants.managed() == []
    finally:
        if not was_up:
            run_testenv(args.state_dir, "down", check=False)

    def cell(total: float) -> str:
        return f"{total:.2f} s ({total / n * 1000:.0f} ms each)"

    print(
        f"| {datetime.now(UTC).date()} | 2 cores, Python {platform.python_version()} | {n} "
        f"| {t_up:.1f} s | {cell(t_plan)} | {cell(t_apply)} | {cell(t_reapply)} "
        f"| {cell(t_delete)} |"
    )


if __name__ == "__main__":
    main()
