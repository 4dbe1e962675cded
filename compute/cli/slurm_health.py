"""The node check as Slurm's HealthCheckProgram: drain this node on a fatal failure, and lift
only a drain the node check itself made once the node checks clean again."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from compute.cli.output import error_line
from compute.config import Settings
from health.policy import DrainMode as PolicyDrainMode
from health.policy import drain_mode, owned_reason
from health.result import CheckResult, Status
from scheduler.errors import SchedulerError
from scheduler.protocol import DrainMode
from scheduler.slurm import SlurmWorkloadManager
from scheduler.slurm.commands import SlurmCommands

# Drains made on the node carry this prefix: the control plane treats them as its own
# (they start with "computectl:"), while the node check lifts only these.
NODE_CHECK_PREFIX = owned_reason("node-check", "")


def slurm_backend(settings: Settings) -> SlurmWorkloadManager:
    """The Slurm cluster this node belongs to: from the settings' Slurm pools, else from the
    environment (SLURM_CONF), with every partition counted in."""
    for pool in settings.effective_pools:
        slurm = getattr(pool, "slurm", None)
        if pool.backend == "slurm" and slurm is not None:
            commands = SlurmCommands(slurm.bin_dir, slurm.slurm_conf, slurm.command_timeout_seconds)
            break
    else:
        conf = os.environ.get("SLURM_CONF")
        commands = SlurmCommands(None, Path(conf) if conf else None)
    partitions = {
        str(p) for raw in commands.sinfo_json().get("nodes", []) for p in raw.get("partitions", [])
    }
    return SlurmWorkloadManager(commands, {p: p for p in sorted(partitions)})


def act_on_results(settings: Settings, node: str, results: Sequence[CheckResult]) -> str:
    """Drain or resume ``node`` in Slurm as the results say; returns what was done."""
    try:
        wm = slurm_backend(settings)
        status = wm.node(node)
        fatal = next((r for r in results if r.fatal), None)
        if fatal is not None:
            if status.drain:
                return "already drained"  # whoever drained it, the node stays out
            # The sweep's rule: a fatal failure of a down check ends running work.
            down = drain_mode(fatal.check, fatal.fatal, settings.remediation.down_checks)
            mode: DrainMode = "down" if down is PolicyDrainMode.DOWN else "drain"
            wm.drain(node, owned_reason("node-check", f"{fatal.check}: {fatal.evidence}"), mode)
            return f"drained ({mode})"
        clean = not any(r.status is Status.FAIL for r in results)
        if clean and status.drain and status.reason.startswith(NODE_CHECK_PREFIX):
            wm.resume(node)
            return "resumed"
        return "unchanged"
    except SchedulerError as exc:
        error_line(f"slurm: {exc}")
        return "error"
