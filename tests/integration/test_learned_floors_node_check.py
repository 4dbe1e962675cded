"""The node's own burn-in judged against the fleet's learned floors: `computectl node check
--report` against a real `computectl serve` on the simulated datacenter. A GPU at 92 % of the
fleet (above the fixed floor, within its node's median band) fails on the node, exit 1, with
the learned floor in its evidence, and the control plane stores the same verdict; with the
control plane out of reach the node judges with its fixed floors, passes, and says why."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.auth.testing import token_for
from compute.config import load_settings
from compute.runtime import Runtime
from compute.services import learned_floors
from compute.simulation.burnin import SimulatedBurnIn
from health.floors import load_floors
from health.result import BURNIN_SUMMARY

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "computectl"
CONFIG = """
[simulation]
racks = 4
fault_rate_per_node_hour = 0.0
technician_repair_hours = 0.0

[remediation]
periodic_burn_in_days = 0

[sweep]
interval_seconds = 0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    """A data directory whose fleet has taught the floors, one GPU of ``target`` slowed to 92 %,
    and the target's own credential."""
    config = tmp_path / "computectl.toml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
    env |= {
        "COMPUTECTL_CONFIG": str(config),
        "COMPUTECTL_DATA_DIR": str(data),
        "COMPUTECTL_CLIENT_CONFIG": str(tmp_path / "no-client-config.toml"),
    }
    rt = Runtime.build(load_settings(config, env=env))
    try:
        rt.sweep()
        assert rt.datacenter is not None
        names = sorted(n.name for n in rt.store.nodes())
        target = names[0]
        fleet = [n for n in rt.store.nodes() if n.name != target]
        SimulatedBurnIn(rt.datacenter, rt.ingest, rt.thresholds, rt.store.gpu_uuids).launch_many(
            fleet
        )
        assert learned_floors.refresh(rt.store, rt.settings.floors, rt.clock.now(), force=True)
        with rt.datacenter.fleet_access() as world:
            # Test-local: the GPU's GEMM speed as the SLOW_GEMM fault sets it (to 0.70), kept
            # in the world's file for the processes below.
            world.nodes[target].gpus[3].gemm_factor = 0.92
            world.changed.add(target)
        token = token_for(rt.store, "node", node=target)
        operator = token_for(rt.store, "operator")
    finally:
        rt.close()
    token_file = tmp_path / "node-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return {"env": env, "target": target, "token_file": token_file, "operator": operator}


@pytest.fixture
def serve(site: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), "--workers", "0"],
        env=site["env"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def node_check(site: dict[str, Any], url: str, state: Path) -> tuple[int, dict[str, Any], str]:
    r = subprocess.run(
        [
            str(BIN),
            "node",
            "check",
            "--source",
            "simulated",
            "--node",
            site["target"],
            "--suite",
            "burnin",
            "--allow-busy",  # the simulated cluster runs jobs on it; the figures are the same
            "--dcgm-level",
            "0",
            "--format",
            "json",
            "--state-file",
            str(state),
            "--report",
            url,
            "--token-file",
            str(site["token_file"]),
        ],
        env=site["env"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    doc = json.loads(r.stdout)
    return r.returncode, doc, r.stderr


def test_the_node_fails_a_slow_gpu_on_the_learned_floor_and_falls_back_without_one(
    site: dict[str, Any], serve: str, tmp_path: Path
) -> None:
    fixed = load_floors()["H100-SXM"].gemm_bf16_tflops
    code, doc, err = node_check(site, serve, tmp_path / "state.json")
    by = {r["check"]: r for r in doc["results"]}
    gemm = by["gemm_bf16"]
    slow = gemm["values"]["gpu3_tflops"]
    assert fixed < slow and slow > 0.9 * gemm["values"]["median_tflops"]  # the fixed rule passes
    assert code == 1 == doc["exit_code"], err
    assert gemm["status"] == "fail" and gemm["gpus"] == [3]
    assert "learned floor" in gemm["evidence"] and gemm["values"]["node_verdict"] == "pass"
    assert fixed < gemm["values"]["learned_floor"] < gemm["values"]["median_tflops"]
    assert by[BURNIN_SUMMARY]["status"] == "fail" and by[BURNIN_SUMMARY]["gpus"] == [3]

    # The control plane stored the node's verdict: one verdict, not two.
    req = urllib.request.Request(
        f"{serve}/api/v1/nodes/{site['target']}",
        headers={"Authorization": f"Bearer {site['operator']}"},
    )
    shown = json.loads(urllib.request.urlopen(req, timeout=10).read())
    stored = next(r for r in shown["results"] if r["check"] == "gemm_bf16")
    assert (stored["status"], stored["gpus"]) == ("fail", [3])
    assert stored["values"]["learned_floor"] == gemm["values"]["learned_floor"]

    # Out of reach: the fixed floors judge, the check passes and says why; the report failed.
    code, doc, err = node_check(site, "http://127.0.0.1:1", tmp_path / "state.json")
    by = {r["check"]: r for r in doc["results"]}
    assert (code, doc["exit_code"]) == (4, 0), err
    assert by["gemm_bf16"]["status"] == "pass" and by[BURNIN_SUMMARY]["status"] == "pass"
    assert by["gemm_bf16"]["evidence"].startswith("learned floors unavailable: ")
    assert "learned_floor" not in by["gemm_bf16"]["values"]
