"""`computectl node check --slurm` run by slurmd as its HealthCheckProgram, on a real cluster."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from compute.config import load_settings
from compute.runtime import Runtime
from tests.integration.conftest import SLURM_NODES, SLURM_PORT_BASE, SlurmCluster

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent / "computectl"


# slurmd starts the check on every node every INTERVAL s, whether or not the last one ended:
# 8 checks (each a Python process reading the simulated world, ~1.5 s of CPU) every 2 s
# would pile up without end on 2 cores. Waits allow several rounds on a busy machine.
INTERVAL = 10
SLURMD_ROUNDS = 120


def test_health_check_program_drains_on_a_fault_and_lifts_only_its_own_drain(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    data = tmp_path / "sim"
    cli = [str(BIN), "--data-dir", str(data)]
    subprocess.run([*cli, "sweep"], check=True, capture_output=True)  # the simulated GPUs
    log = tmp_path / "healthcheck.log"
    wrapper = tmp_path / "computectl-healthcheck"
    # As the slurm_health role's wrapper (computectl-healthcheck.j2), pointed at this cluster
    # and the simulated GPUs.
    wrapper.write_text(
        "#!/bin/sh\n"
        f"PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_CONF={slurm.slurm_conf}\n"
        "export PATH SLURM_CONF\n"
        f"exec {BIN} --data-dir {data} node check --slurm --source simulated "
        f'--state-file {tmp_path}/state-"$SLURMD_NODENAME".json >> {log} 2>&1\n'
    )
    wrapper.chmod(0o755)
    extra = tmp_path / "healthcheck.conf"
    extra.write_text(
        f"HealthCheckProgram={wrapper}\nHealthCheckInterval={INTERVAL}\nHealthCheckNodeState=ANY\n"
    )
    slurm.testenv(
        "up",
        "--nodes",
        str(SLURM_NODES),
        "--port-base",
        str(SLURM_PORT_BASE),
        "--extra-conf",
        str(extra),
    )
    try:
        slurm.wait(
            "slurmd to run the check",
            lambda: (
                log.exists() and "gpu-002" in "".join(p.name for p in tmp_path.glob("state-*.json"))
            ),
            timeout=SLURMD_ROUNDS,
        )
        assert not slurm.reasons(), "healthy simulated GPUs must not drain anything"

        subprocess.run(
            [*cli, "sim", "inject", "gpu-002", "xid79", "--gpu", "3"],
            check=True,
            capture_output=True,
        )
        slurm.wait(
            "the check to drain gpu-002",
            lambda: (
                slurm.reasons()
                .get("gpu-002", "")
                .startswith("computectl: node-check: gpu_count: 1 of 8 GPUs missing")
            ),
            timeout=SLURMD_ROUNDS,
        )

        # An admin's drain on another node survives the health check's clean runs.
        slurm.run("scontrol", "update", "nodename=gpu-003", "state=drain", "reason=admin: PSU")
        time.sleep(2 * INTERVAL + 1)  # two clean rounds at least
        assert slurm.reasons()["gpu-003"] == "admin: PSU"

        # Repaired: the next clean run lifts the drain it made, and only that one.
        settings = load_settings(None, env={}, overrides={"data_dir": str(data)})
        rt = Runtime.build(settings)
        assert rt.datacenter is not None
        rt.datacenter.repair("gpu-002")
        rt.close()
        slurm.wait(
            "the check to resume gpu-002",
            lambda: "gpu-002" not in slurm.reasons(),
            timeout=SLURMD_ROUNDS,
        )
        assert slurm.reasons() == {"gpu-003": "admin: PSU"}
    finally:
        slurm.up()  # the plain configuration again
        # A drain left by a failed run must not hold the next tests' jobs back.
        slurm.run("scontrol", "update", "nodename=gpu-[002-003]", "state=resume", check=False)
