"""Tranche acceptance on the real Slurm test cluster (testenv/slurm): real sbatch burn-in jobs
in MAINT reservations posting to a real API server, then real srun pair jobs (gloo on the
CPU), driven by the control plane's sweeps as `computectl serve` drives them.

The emulated nodes have no GPUs: the burn-in job's node check reads a simulated datacenter
of its own (the hardware boundary, as in test_slurm_burnin.py), where one node's GPU is made
slow. That node fails burn-in twice and goes to repair; the other four pass and go back into
service. One link between two of them is made slow for real: every slurmd runs on this host,
so the probe of a pair that is that link's two nodes joins a cgroup of 5 % of one core
(cgroup v1 ``cpu``, as in test_slurm_pair_recheck.py) and its all-reduce crawls. The report
names exactly the bad node and the bad link; 4 of 5 accepted, the tranche goes live at 0.8.
"""

from __future__ import annotations

import os
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
  *--peers*)
    exec {python} {pair} "$@" ;;
  *)
    exec {bin} "$@" ;;
esac
"""

PAIR = """#!{python}
# The pair probe, throttled when its pair is the slow link's two nodes.
import os
import sys

SLOW_LINK = {link!r}
args = sys.argv[1:]
peers = args[args.index("--peers") + 1] if "--peers" in args else ""
me = os.environ.get("SLURMD_NODENAME", "")
pair = {{p.split("@")[0] for p in peers.split(",") if p}} | {{me}}
if pair == set(SLOW_LINK):
    import torch  # noqa: F401  at full speed: a throttled import would take minutes

    with open({procs!r}, "w") as f:
        f.write(str(os.getpid()))
from compute.cli.main import main

sys.exit(main())
"""
CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")


@pytest.fixture
def throttle() -> Iterator[Path]:
    """A cgroup of 5 % of one core: 1 ms of CPU (the kernel's least quota) every 20 ms."""
    if not os.access(CPU_CGROUPS, os.W_OK):
        pytest.skip("needs a writable cgroup v1 cpu controller (root)")
    group = CPU_CGROUPS / f"computectl-accept-slow-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("20000")
        (group / "cpu.cfs_quota_us").write_text("1000")
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            (CPU_CGROUPS / "cgroup.procs").write_text(pid)
        group.rmdir()


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


def test_a_small_tranche_is_accepted_end_to_end(
    cluster: SlurmCluster, tmp_path: Path, throttle: Path
) -> None:
    server = Server(free_port())
    names_probe = _runtime(cluster, tmp_path / "probe", server.url, tmp_path / "none")
    names = [n.name for n in names_probe.nodes.list(pool="training")][:5]
    names_probe.close()
    bad = names[1]
    # Neighbours on the pair test's ring of the nodes that pass burn-in.
    link = [names[2], names[3]]
    pair = tmp_path / "pair-probe"
    pair.write_text(
        PAIR.format(python=sys.executable, link=link, procs=str(throttle / "cgroup.procs"))
    )
    pair.chmod(0o755)
    command = tmp_path / "node-computectl"
    command.write_text(
        WRAPPER.format(tmp=tmp_path, bin=BIN, bad=bad, python=sys.executable, pair=pair)
    )
    command.chmod(0o755)
    rt = _runtime(cluster, tmp_path / "cp", server.url, command)
    for name in names:
        token = tmp_path / f"node-token-{name}"
        token.write_text(token_for(rt.store, "node", node=name, name="node-check"))
        token.chmod(0o600)
    server.start(rt)
    try:
        acceptance.create(rt.store, rt.clock, "slurm-1", "operator:test", names, threshold=0.8)
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
        assert (report["accepted"], report["total"], report["live"]) == (4, 5, True), report
        (pool,) = report["fabric"]
        assert pool["run"] and pool["suspect_nodes"] == {}, pool
        assert report["suspect_links"] == [sorted(link)], pool
        assert pool["reference_gbps"] and pool["reference_gbps"] > 0
        gemm = [e for e in report["nodes"][1]["evidence"] if e["check"].startswith("gemm")]
        assert gemm, report["nodes"][1]
        for name in names:
            node = rt.store.node(name)
            assert node is not None
            want = Lifecycle.REPAIR if name == bad else Lifecycle.IN_SERVICE
            assert node.state is want, (name, node.state)
        assert bad in cluster.reasons()
        print(f"tranche of 5 judged in {took:.0f} s")
    finally:
        server.stop()
        rt.close()
