"""The Slurm pair launcher's own parts: job names, scancel's command lines, the environment the
pair jobs get, and what it does when pairs run late or the wait is interrupted.

Slurm's tools are stand-in shell scripts in a bin dir (SlurmCommands' ``bin_dir``): they record
how they were called. The real srun runs in tests/integration/test_slurm_pairs.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.pairs import PairRun
from scheduler.slurm import pairs as pairs_module
from scheduler.slurm.commands import SlurmCommands, job_env
from scheduler.slurm.pairs import JOB_PREFIX, SlurmPairs, job_names, scancel_args

NODES = ("n1", "n2", "n3", "n4")


def test_job_names_are_unique_per_round() -> None:
    assert job_names(2, "abc12345") == [f"{JOB_PREFIX}-abc12345-0", f"{JOB_PREFIX}-abc12345-1"]
    one, two = job_names(3), job_names(3)
    assert len(set(one)) == 3 and not set(one) & set(two)
    run_id = one[0].split("-")[2]
    assert len(run_id) == 8 and all(n == f"{JOB_PREFIX}-{run_id}-{i}" for i, n in enumerate(one))


def test_scancel_names_one_job_in_the_partition_as_the_user() -> None:
    assert scancel_args("computectl-pair-abc12345-1", "training", "svc") == [
        "--name=computectl-pair-abc12345-1",
        "--partition=training",
        "--user=svc",
    ]


def test_job_env_removes_the_control_planes_variables_and_sets_what_is_kept() -> None:
    environ = {
        "PATH": "/bin",
        "COMPUTECTL_CONFIG": "/etc/computectl.toml",
        "COMPUTECTL_SERVER__API_TOKEN": "s3cret",
        "SLURM_CONF": "/etc/slurm.conf",
    }
    assert job_env(environ=environ) == {
        "COMPUTECTL_CONFIG": None,
        "COMPUTECTL_SERVER__API_TOKEN": None,
    }
    assert job_env({"COMPUTECTL_SERVER__API_TOKEN": "node"}, environ) == {
        "COMPUTECTL_CONFIG": None,
        "COMPUTECTL_SERVER__API_TOKEN": "node",
    }


class Tools:
    """Stand-ins for sinfo, srun and scancel; each call is logged to ``log``."""

    def __init__(self, root: Path, srun_body: str) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.log"
        self.pids = root / "pids"
        self.pids.mkdir()
        sinfo = {"nodes": [{"name": n, "address": f"10.0.0.{i}"} for i, n in enumerate(NODES)]}
        self._tool("sinfo", f"cat <<'EOF'\n{json.dumps(sinfo)}\nEOF")
        self._tool("scancel", f'echo "scancel $*" >> {self.log}')
        self._tool(
            "srun",
            f'echo "srun $*" >> {self.log}\n'
            f"env | grep ^COMPUTECTL_ >> {root}/srun-env\n"
            f"echo $$ > {self.pids}/$$\n"
            f"{srun_body}",
        )

    def _tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def calls(self, tool: str) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line for line in text.splitlines() if line.startswith(f"{tool} ")]

    def alive(self) -> list[int]:
        out = []
        for f in self.pids.iterdir():
            pid = int(f.read_text())
            try:
                # A zombie no longer counts: /proc says so.
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            if "\nState:\tZ" not in status:
                out.append(pid)
        return out


@pytest.fixture
def quick_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pairs_module, "_END_SECONDS", 1.0)


def launcher(tools: Tools, clock: Callable[[], float] = time.monotonic) -> SlurmPairs:
    env = {
        "PATH": "/usr/bin:/bin",
        "COMPUTECTL_CONFIG": "/etc/computectl.toml",
        "COMPUTECTL_SERVER__API_TOKEN": "s3cret",
    }
    return SlurmPairs(SlurmCommands(tools.bin, env=env), "training", clock=clock, user="svc")


ROUND = [PairRun(("n1", "n2"), 29500), PairRun(("n3", "n4"), 29501)]


def test_pairs_that_finish_get_no_scancel_and_no_control_plane_variables(
    tmp_path: Path,
) -> None:
    tools = Tools(tmp_path, 'echo "srun: job 7 queued and waiting for resources" >&2\necho ok')
    outcomes = launcher(tools).run_pairs(ROUND, ["--device", "cpu"], 30)
    assert [(o.nodes, o.job, o.output, o.error) for o in outcomes] == [
        (("n1", "n2"), "7", "ok\n", ""),
        (("n3", "n4"), "7", "ok\n", ""),
    ]
    assert not tools.calls("scancel")
    # The tasks get srun's environment: none of the control plane's settings.
    assert not (tmp_path / "srun-env").read_text().strip()
    srun = tools.calls("srun")
    assert len(srun) == 2
    names = sorted(a for line in srun for a in line.split() if a.startswith("--job-name="))
    assert len({n.rsplit("-", 1)[0] for n in names}) == 1  # one round, one run id
    assert [n.rsplit("-", 1)[1] for n in names] == ["0", "1"]


def test_late_pairs_are_cancelled_one_name_each_and_ended_together(
    tmp_path: Path, quick_end: None
) -> None:
    # srun ignores the cancel (a stuck srun): killed after _END_SECONDS for all, not each.
    tools = Tools(
        tmp_path,
        "echo \"srun: job 41 queued and waiting for resources\" >&2\ntrap '' TERM\nexec sleep 60",
    )
    begun = time.monotonic()
    outcomes = launcher(tools).run_pairs(ROUND, [], 0.5)
    took = time.monotonic() - begun
    assert took < 0.5 + 2 * 1.0, took
    srun_names = [
        a.split("=", 1)[1]
        for line in tools.calls("srun")
        for a in line.split()
        if a.startswith("--job-name=")
    ]
    assert sorted(tools.calls("scancel")) == sorted(
        f"scancel --name={n} --partition=training --user=svc" for n in srun_names
    )
    for o in outcomes:
        assert o.job == "41"
        assert o.error == f"not finished after 0.5 s (queued for {','.join(o.nodes)}); cancelled"
    assert not tools.alive()


def test_an_interrupted_wait_cancels_every_job_and_kills_srun(tmp_path: Path) -> None:
    tools = Tools(tmp_path, "exec sleep 60")
    calls = 0

    def clock() -> float:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise KeyboardInterrupt
        return 0.0

    with pytest.raises(KeyboardInterrupt):
        launcher(tools, clock=clock).run_pairs(ROUND, [], 60)
    assert len(tools.calls("scancel")) == 2
    assert all("--partition=training --user=svc" in c for c in tools.calls("scancel"))
    assert not tools.alive()
