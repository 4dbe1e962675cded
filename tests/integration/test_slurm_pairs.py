"""The NCCL pair test as real srun jobs on the Slurm test cluster.

Every slurmd of the test cluster runs on this host, so each pair's two tasks
are real processes that rendezvous over loopback and all-reduce through gloo
on the CPU: the same code path as NCCL over the fabric, without GPUs. The
figures are real but judge nothing about a fabric, so the tests assert what
was run and recorded, not which pair is fastest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from compute.runtime import Runtime
from compute.services.fabric import PAIR_CHECK, PairTestOptions
from health.result import Status
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent / "computectl"


def _runtime(slurm: SlurmCluster, tmp_path: Path) -> Runtime:
    # The nodes run this checkout's computectl.
    return runtime_over(slurm.computectl_toml, tmp_path / "cp", {"node_command": [str(BIN)]})


def _options(timeout: float) -> PairTestOptions:
    return PairTestOptions(nbytes=1 << 20, timeout_seconds=timeout, device="cpu", port=29650)


def test_pairs_run_as_srun_jobs_on_their_nodes(slurm: SlurmCluster, tmp_path: Path) -> None:
    rt = _runtime(slurm, tmp_path)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        nodes = [n.name for n in rt.nodes.list(pool="training")][:4]
        # Two rounds and four jobs exactly: no re-pairing of a pair the loaded machine made
        # slow (tests/integration/test_slurm_pair_recheck.py tests the re-pairing).
        options = replace(_options(120), recheck=False)
        run = rt.fabric.pair_test("training", options, actor="test", names=nodes)
    finally:
        rt.close()
    report = run.report
    assert run.rounds == 2
    assert [v.nodes for v in report.pairs] == [
        (nodes[0], nodes[1]),
        (nodes[2], nodes[3]),
        (nodes[1], nodes[2]),
        (nodes[3], nodes[0]),
    ]
    for v in report.pairs:
        assert v.error == ""
        assert v.busbw_gbps is not None and v.busbw_gbps > 0
        assert v.job.isdigit() or v.job.startswith("computectl-pair-")

    # Slurm's own record: one two-node job per pair, each on exactly its pair.
    def pair_jobs() -> list[str]:
        out = slurm.run(
            "sacct", "-X", "-n", "-P", "-a", "-S", since, "--format=JobName,NodeList,State",
        )  # fmt: skip
        return [r for r in out.splitlines() if r.startswith("computectl-pair-")]

    # slurmdbd records a job's end a moment after srun returns.
    # Every pair's record, not only those already there: all() of too few rows is true.
    slurm.wait(
        "sacct to record the pairs",
        lambda: len(rows := pair_jobs()) >= 4 and all("|COMPLETED" in r for r in rows),
    )
    rows = pair_jobs()
    assert len(rows) == 4
    assert {r.split("|")[2] for r in rows} == {"COMPLETED"}
    ran_on = sorted(r.split("|")[1] for r in rows)
    assert len(ran_on) == 4 and all("gpu-" in r for r in ran_on)
    # Every node tested has its result, shown by `nodes show`.
    rt = _runtime(slurm, tmp_path)
    try:
        for name in nodes:
            latest = {r.check: r for r in rt.store.latest_results(name)}
            assert latest[PAIR_CHECK].values["pairs"] == 2
            assert float(latest[PAIR_CHECK].values["min_busbw_gbps"]) > 0
        audit = rt.store.audit(target="training", limit=5)
        assert audit[0].action == "pool.pair_test" and audit[0].detail["pairs"] == 4
    finally:
        rt.close()


def test_a_node_that_cannot_run_is_untested_not_suspect(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    """A node no job can reach (drained outside computectl) gets no figure with either
    partner: the pairs are cancelled at the timeout, and the node is reported untested (no
    figure is no evidence against it), not as a suspect node or link."""
    rt = _runtime(slurm, tmp_path)
    try:
        nodes = [n.name for n in rt.nodes.list(pool="training")][:3]
        slurm.run("scontrol", "update", f"nodename={nodes[2]}", "state=drain", "reason=cable")
        # 20 s: the healthy pair must finish on a loaded 2-core machine (a torch import on
        # each side); 8 s was not always enough there.
        run = rt.fabric.pair_test("training", _options(20), actor="test", names=nodes)
    finally:
        rt.close()
    report = run.report
    assert run.rounds == 3
    by_pair = {v.nodes: v for v in report.pairs}
    assert by_pair[(nodes[0], nodes[1])].busbw_gbps is not None
    for pair in ((nodes[1], nodes[2]), (nodes[2], nodes[0])):
        assert by_pair[pair].busbw_gbps is None
        assert "not finished after 20 s" in by_pair[pair].error
    assert not report.healthy
    assert list(report.untested) == [nodes[2]]
    assert report.suspect_nodes == {}
    assert report.suspect_links == ()
    # The pending jobs were cancelled, not left in the queue.
    assert not slurm.run("squeue", "-h", "-o", "%A").strip()
    rt = _runtime(slurm, tmp_path)
    try:
        latest = {r.check: r for r in rt.store.latest_results(nodes[2])}
        assert latest[PAIR_CHECK].status is Status.WARN
        assert "not finished after 20 s" in latest[PAIR_CHECK].evidence
    finally:
        rt.close()


def test_a_round_of_pairs_that_all_time_out_cancels_each_job(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    """Two pairs of one round still queued at the timeout (each has a node drained outside
    computectl): each job is cancelled by its own name, and the round ends soon after."""
    rt = _runtime(slurm, tmp_path)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    timeout = 6.0
    try:
        nodes = [n.name for n in rt.nodes.list(pool="training")][:4]
        drained = f"{nodes[1]},{nodes[3]}"
        slurm.run("scontrol", "update", f"nodename={drained}", "state=drain", "reason=cable")
        begun = time.monotonic()
        run = rt.fabric.pair_test("training", _options(timeout), actor="test", names=nodes)
        took = time.monotonic() - begun
    finally:
        rt.close()
    # Rounds (0,1),(2,3) | (1,2),(3,0): every pair has a drained node, so all stay queued.
    assert run.rounds == 2
    assert took < run.rounds * (timeout + 15), took
    report = run.report
    assert len(report.pairs) == 4
    for v in report.pairs:
        assert v.busbw_gbps is None
        assert v.error.startswith(f"not finished after {timeout:g} s"), v.error
        assert v.error.endswith("; cancelled"), v.error
    # Cancelled, not left queued (nor merely their srun killed).
    assert not slurm.run("squeue", "-h", "-o", "%A").strip()

    def pair_jobs() -> list[str]:
        out = slurm.run(
            "sacct", "-X", "-n", "-P", "-a", "-S", since, "--format=JobName,State",
        )  # fmt: skip
        return [r for r in out.splitlines() if r.startswith("computectl-pair-")]

    slurm.wait("sacct to record the pairs", lambda: len(pair_jobs()) == 4)
    rows = pair_jobs()
    assert {r.split("|")[1].split()[0] for r in rows} == {"CANCELLED"}
    # Every job had a name of its own: one run id per round, one index per pair.
    assert len({r.split("|")[0] for r in rows}) == 4
    assert len({r.split("|")[0].rsplit("-", 1)[0] for r in rows}) == 2


def test_cli_pair_test(slurm: SlurmCluster, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COMPUTECTL_CONFIG": str(slurm.computectl_toml),
        "COMPUTECTL_DATA_DIR": str(tmp_path / "cp"),
        "COMPUTECTL_REMEDIATION__NEW_NODES": "in_service",
        # srun passes the environment on: the nodes find this checkout's computectl first.
        "PATH": f"{BIN.parent}:{os.environ.get('PATH', '')}",
        "COMPUTECTL_PAIR_TEST__PORT": "29680",
    }
    subprocess.run([str(BIN), "sweep"], env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [str(BIN), "nodes", "pair-test", "training", "--node", "gpu-005", "--node", "gpu-006",
         "--device", "cpu", "--bytes", "65536", "--timeout", "60", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["healthy"] and doc["rounds"] == 1
    assert doc["pairs"][0]["nodes"] == ["gpu-005", "gpu-006"]
    assert doc["pairs"][0]["busbw_gbps"] > 0
    bad = subprocess.run(
        [str(BIN), "nodes", "pair-test", "inference", "--node", "gpu-005"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: gpu-005 is in pool 'training', not 'inference'"
    ]
