"""Re-pairing on the Slurm test cluster: real srun jobs, gloo on the CPU, real slowness.

Every slurmd runs on this host, so a node is made slow for real: the task that runs the
probe on it joins a cgroup whose CPU quota is 5 % of one core (cgroup v1 ``cpu``), after
importing PyTorch at full speed, so its side of the all-reduce crawls and so does the
pair. A slow link is the same quota applied only when the pair is that link's two nodes.
The figures are real; the ratio is chosen far from the noise of a loaded machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.services.fabric import PAIR_CHECK, PairTestOptions
from health.fabric_recheck import Outcome
from health.result import Status
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration
CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")

WRAPPER = """#!{python}
# computectl on a test node, throttled where the test says this node or link is slow.
import os
import sys

SLOW_NODES = {slow_nodes!r}
SLOW_LINKS = {slow_links!r}
args = sys.argv[1:]
me = os.environ.get("SLURMD_NODENAME", "")
peers = args[args.index("--peers") + 1] if "--peers" in args else ""
pair = {{p.split("@")[0] for p in peers.split(",") if p}}
if me in SLOW_NODES or any(set(link) == pair for link in SLOW_LINKS):
    import torch  # noqa: F401  at full speed: a throttled import would take minutes

    with open({procs!r}, "w") as f:
        f.write(str(os.getpid()))
from compute.cli.main import main

sys.exit(main())
"""


@pytest.fixture
def throttle(tmp_path: Path) -> Iterator[Path]:
    """A cgroup of 5 % of one core: 1 ms of CPU (the kernel's least quota) every 20 ms."""
    if not os.access(CPU_CGROUPS, os.W_OK):
        pytest.skip("needs a writable cgroup v1 cpu controller (root)")
    group = CPU_CGROUPS / f"computectl-pair-slow-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("20000")
        (group / "cpu.cfs_quota_us").write_text("1000")
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            # A probe still running after the test goes back to the root group, whole.
            (CPU_CGROUPS / "cgroup.procs").write_text(pid)
        group.rmdir()


def test_a_node_slow_only_with_one_partner_is_cleared_and_a_slow_node_confirmed(
    slurm: SlurmCluster, tmp_path: Path, throttle: Path
) -> None:
    # The ring a-s-h-c-d-e: s is a slow node, the link h-c is slow. On the ring alone, h is
    # slow with both its partners (with s through s, with c through the link): a suspect.
    rt = runtime_over(slurm.computectl_toml, tmp_path / "cp")
    try:
        ring = [n.name for n in rt.nodes.list(pool="training")][:6]
        a, s, h, c, d, e = ring
        wrapper = tmp_path / "computectl-node"
        wrapper.write_text(
            WRAPPER.format(
                python=sys.executable,
                slow_nodes=[s],
                slow_links=[[h, c]],
                procs=str(throttle / "cgroup.procs"),
            )
        )
        wrapper.chmod(0o755)
        rt.close()
        rt = runtime_over(slurm.computectl_toml, tmp_path / "cp", {"node_command": [str(wrapper)]})
        options = PairTestOptions(
            slow_ratio=0.3, nbytes=4 << 20, timeout_seconds=240, device="cpu", port=29900
        )
        run = rt.fabric.pair_test("training", options, actor="test", names=ring)
        report = run.report
        by_pair = {v.nodes: v for v in report.pairs}
        assert all(v.busbw_gbps is not None for v in report.pairs), report.pairs
        # The ring saw s's pairs and the link slow, the rest not.
        assert {p for p, v in by_pair.items() if v.slow} == {(a, s), (s, h), (h, c)}, report
        assert run.recheck_rounds == 1
        outcomes = {r.node: (r.partner, r.outcome) for r in run.rechecks}
        assert outcomes == {s: (d, Outcome.CONFIRMED), h: (e, Outcome.CLEARED)}, run.rechecks
        assert list(report.suspect_nodes) == [s]
        assert "again with known-good" in report.suspect_nodes[s]
        assert report.suspect_links == ((h, c),)
        assert report.inconclusive == ()
        latest = {n: {r.check: r for r in rt.store.latest_results(n)}[PAIR_CHECK] for n in ring}
        assert latest[s].status is Status.FAIL
        assert latest[h].status is Status.WARN
        assert "cleared by re-pairing" in latest[h].evidence
        audit = rt.store.audit(target="training", limit=1)[0]
        assert [x["outcome"] for x in audit.detail["rechecks"]] == ["confirmed", "cleared"]
    finally:
        rt.close()
    assert not slurm.run("squeue", "-h", "-o", "%A").strip()
