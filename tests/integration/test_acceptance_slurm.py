"""Tranche acceptance on the real Slurm test cluster (testenv/slurm): real sbatch burn-in jobs
in MAINT reservations posting to a real API server, then real srun pair jobs (gloo on the
CPU), driven by the control plane's sweeps as `computectl serve` drives them.

The emulated nodes have no GPUs: the burn-in job's node check reads a simulated datacenter
of its own (the hardware boundary, as in test_slurm_burnin.py), where one node's GPU is made
slow. That node fails burn-in twice and goes to repair; the other three pass, go back into
service, pass the pair test, and the tranche goes live at 0.75.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.auth.testing import token_for
from compute.config import load_settings
from compute.runtime import Runtime
from compute.services import acceptance
from health.policy import Lifecycle
from tests.integration.conftest import SlurmCluster
from tests.integration.test_slurm_burnin import Server, end_burn_ins, free_port

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent / "computectl"

WRAPPER = """#!/bin/sh
# computectl on a test node: burn-in reads a simulated datacenter of the job's own.
case "$*" in
  *"--suite burnin"*)
    sim={tmp}/sim-$SLURM_JOB_ID
    sleep 1
    {bin} --data-dir $sim sweep > /dev/null || exit 5
    if [ "$SLURMD_NODENAME" = "{bad}" ]; then
      {bin} --data-dir $sim sim inject {bad} slow_gemm --gpu 3 > /dev/null || exit 6
    fi
    COMPUTECTL_NODE_TOKEN=$(cat {tmp}/node-token-$SLURMD_NODENAME); export COMPUTECTL_NODE_TOKEN
    exec {bin} --data-dir $sim "$@" --source simulated --allow-busy ;;
  *)
    exec {bin} "$@" ;;
esac
"""


@pytest.fixture
def cluster(slurm: SlurmCluster) -> Iterator[SlurmCluster]:
    end_burn_ins(slurm)
    slurm.reset()
    yield slurm
    end_burn_ins(slurm)


def _runtime(slurm: SlurmCluster, data_dir: Path, url: str, command: Path) -> Runtime:
    """As tests/integration/conftest.py's runtime_over, with the burn-in's and the pair
    test's settings for a CPU cluster on a loaded machine."""
    pools = [
        p.model_dump(mode="json", exclude_none=True)
        for p in load_settings(slurm.computectl_toml, env={}).pools
    ]
    for p in pools:
        p["adopt"] = "enforce"
        p.setdefault(p["backend"], {}).update(
            {
                "burn_in_report_url": url,
                "node_command": [str(command)],
                "burn_in_time_limit_minutes": 10,
                "burn_in_reservation_minutes": 30,
                "burn_in_output": str(data_dir / "burnin-%j.out"),
            }
        )
    overrides: dict[str, Any] = {
        "data_dir": str(data_dir),
        "remediation": {
            "new_nodes": "in_service",
            "periodic_burn_in_days": 0,
            "burn_in_timeout_minutes": 20,
        },
        # A loaded machine's CPU all-reduce wobbles: only a crawl is slow here.
        "pair_test": {"slow_ratio": 0.3, "bytes": 4 << 20, "timeout_seconds": 240, "port": 29950},
        "pools": pools,
    }
    settings = load_settings(slurm.computectl_toml, env={}, overrides=overrides)
    rt = Runtime.build(settings)
    rt.sweep()
    return rt


def test_a_small_tranche_is_accepted_end_to_end(cluster: SlurmCluster, tmp_path: Path) -> None:
    server = Server(free_port())
    names_probe = _runtime(cluster, tmp_path / "probe", server.url, tmp_path / "none")
    names = [n.name for n in names_probe.nodes.list(pool="training")][:4]
    names_probe.close()
    bad = names[1]
    command = tmp_path / "node-computectl"
    command.write_text(WRAPPER.format(tmp=tmp_path, bin=BIN, bad=bad))
    command.chmod(0o755)
    rt = _runtime(cluster, tmp_path / "cp", server.url, command)
    for name in names:
        token = tmp_path / f"node-token-{name}"
        token.write_text(token_for(rt.store, "node", node=name, name="node-check"))
        token.chmod(0o600)
    server.start(rt)
    try:
        acceptance.create(rt.store, rt.clock, "slurm-1", "operator:test", names, threshold=0.75)
        acceptance.run(rt.store, rt.clock, "slurm-1")
        began = time.monotonic()
        while acceptance.get(rt.store, "slurm-1").state not in (acceptance.LIVE, acceptance.FAILED):
            assert time.monotonic() - began < 540, acceptance.view(
                acceptance.get(rt.store, "slurm-1")
            )
            errors = [e for e in rt.sweep().errors if "acceptance" in e]
            assert not errors, errors
            time.sleep(2)
        took = time.monotonic() - began
        report = acceptance.report(rt.store, "slurm-1")
        logs = "\n".join(
            p.read_text()[-2000:] for p in sorted((tmp_path / "cp").glob("burnin-*.out"))
        )
        assert [r["node"] for r in report["rma"]] == [bad], (report, logs)
        assert (report["accepted"], report["total"], report["live"]) == (3, 4, True), report
        (pool,) = report["fabric"]
        assert pool["run"] and pool["suspect_nodes"] == {} and pool["suspect_links"] == [], pool
        assert pool["reference_gbps"] and pool["reference_gbps"] > 0
        gemm = [e for e in report["nodes"][1]["evidence"] if e["check"].startswith("gemm")]
        assert gemm, report["nodes"][1]
        for name in names:
            node = rt.store.node(name)
            assert node is not None
            want = Lifecycle.REPAIR if name == bad else Lifecycle.IN_SERVICE
            assert node.state is want, (name, node.state)
        assert bad in cluster.reasons()
        print(f"tranche of 4 judged in {took:.0f} s")
    finally:
        server.stop()
        rt.close()
