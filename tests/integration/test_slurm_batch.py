"""On the real Slurm test cluster: draining and resuming nodes named by a hostlist is one
`scontrol update` for all of them (counted by a bin dir whose scontrol logs its calls)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.domain import EventKind
from compute.runtime import Runtime
from health.policy import Lifecycle
from tests.integration.conftest import SLURM_NODES, SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:alice"
HOSTLIST = f"gpu-[001-{SLURM_NODES:03d}]"
NAMES = [f"gpu-{i:03d}" for i in range(1, SLURM_NODES + 1)]


def logging_bin_dir(tmp_path: Path) -> tuple[Path, Path]:
    """Slurm's real tools, with an scontrol that writes each call's arguments to a log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sinfo", "squeue", "scancel", "sacct", "sacctmgr", "sbatch", "srun"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    log = tmp_path / "scontrol.log"
    script = bin_dir / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which("scontrol")} "$@"\n')
    script.chmod(0o755)
    return bin_dir, log


@pytest.fixture
def counted(slurm: SlurmCluster, tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    bin_dir, log = logging_bin_dir(tmp_path)
    runtime = runtime_over(slurm.computectl_toml, tmp_path / "data", {"bin_dir": str(bin_dir)})
    yield runtime, log
    runtime.close()


def updates(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [line for line in lines if line.startswith("update ")]


def test_a_hostlist_is_drained_and_resumed_with_one_scontrol_update(
    counted: tuple[Runtime, Path], slurm: SlurmCluster
) -> None:
    rt, log = counted
    updates(log)
    batch = rt.nodes.drain_many([HOSTLIST], "rack swap", actor=OPERATOR)
    assert [n.name for n in batch.done] == NAMES and not batch.refused
    assert updates(log) == [
        f"update nodename={','.join(NAMES)} state=drain reason=computectl: operator: rack swap"
    ]
    assert slurm.reasons() == dict.fromkeys(NAMES, "computectl: operator: rack swap")
    for name in NAMES:
        events = rt.store.events(node=name, kinds=[EventKind.DRAIN], limit=5)
        assert len(events) == 1 and events[0].actor == OPERATOR
    assert sorted(a.target for a in rt.store.audit(limit=100) if a.action == "node.drain") == NAMES

    batch = rt.nodes.resume_many([HOSTLIST], actor=OPERATOR, skip_burn_in=True)
    assert {n.state for n in batch.done} == {Lifecycle.IN_SERVICE} and len(
        batch.done
    ) == SLURM_NODES
    assert updates(log) == [f"update nodename={','.join(NAMES)} state=resume"]
    slurm.wait("nodes to be resumed", lambda: not slurm.reasons())
    # The sweep agrees with what was recorded: nothing adopted, nothing lifted outside.
    assert not rt.sweep().errors
    assert {n.state for n in rt.store.nodes()} == {Lifecycle.IN_SERVICE}
