"""Tenants on a real Slurm 22.05 cluster (testenv/slurm), through the Runtime.

One tenant = one account tree: account, a QOS per pool, partition-level user
associations. Nothing is mocked: computectl runs sacctmgr/squeue/scancel, and the
tests submit jobs and look at the cluster with the same commands an operator would.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.errors import BackendError, RefusedError
from compute.runtime import Runtime
from compute.services.capacity import TenantRow, capacity
from compute.services.usage import tenant_usage
from compute.tenants.spec import parse_tenant
from scheduler.errors import Unreachable
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from scheduler.tenants import ChangeKind, Interrupted, TenantSpec
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"
T = "aurora-labs"


@pytest.fixture
def rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    """A control plane whose pools are the cluster's partitions; its tenants removed after."""
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    tenants = slurm_tenants(slurm)
    for name in tenants.managed():
        tenants.delete(name, force=True, grace_seconds=0)


def slurm_tenants(slurm: SlurmCluster, bin_dir: Path | None = None) -> SlurmTenants:
    return SlurmTenants(
        SlurmCommands(bin_dir, slurm_conf=slurm.slurm_conf),
        {"training": "training", "inference": "inference"},
    )


def stop_slurmdbd(slurm: SlurmCluster) -> None:
    pid = int((slurm.state_dir / "pids" / "slurmdbd.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    slurm.wait("slurmdbd to exit", lambda: not Path(f"/proc/{pid}").exists(), 30)


# The one line an outage of the cluster's slurmdbd reads as (port: testenv's base + 19).
DBD_DOWN = r"slurmdbd at 127\.0\.0\.1:\d+ is not answering \(sacctmgr: Connection refused\)"


def spec(rt: Runtime, gpus: int = 16, **extra: Any) -> TenantSpec:
    return parse_tenant(
        {"name": T, "users": ["root"], "quotas": [{"pool": "training", "gpus": gpus}], **extra},
        rt.settings.effective_pools,
    )


def sbatch(
    slurm: SlurmCluster, nodes: int = 1, seconds: int = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """A job of the tenant (as root, -A tenant): ``nodes`` whole 8-GPU nodes."""
    proc = subprocess.run(
        ["sbatch", "--parsable", "-A", T, "-p", "training", "-N", str(nodes),
         "--gres=gpu:h100:8", "-o", "/dev/null", "--wrap", f"sleep {seconds}"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SLURM_CONF": str(slurm.slurm_conf)},
    )  # fmt: skip
    if check and proc.returncode:
        raise AssertionError(f"sbatch: {proc.stderr}")
    return proc


def job_id(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().split(";")[0]


def queue(slurm: SlurmCluster) -> dict[str, tuple[str, str]]:
    """The tenant's jobs: id → (state, reason)."""
    out = slurm.run("squeue", "-h", "-A", T, "-o", "%A|%T|%r")
    return {i: (s, r) for i, s, r in (ln.split("|") for ln in out.splitlines())}


def accounts(slurm: SlurmCluster) -> dict[str, str]:
    out = slurm.run("sacctmgr", "-P", "-n", "show", "account", "format=account,description")
    return dict(ln.split("|", 1) for ln in out.splitlines())


def test_quota_holds_back_work_beyond_it_and_a_second_apply_is_a_no_op(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    s = spec(rt, gpus=16, max_wall_time_hours=2, gpu_hours_budget=1000)
    plan = rt.tenants.plan(s)
    assert [(b, c.kind, c.target) for b, c in plan.changes] == [
        ("slurm", ChangeKind.CREATE, f"qos {T}-training"),
        ("slurm", ChangeKind.CREATE, f"account {T}"),
        ("slurm", ChangeKind.CREATE, f"association root@{T}/training"),
    ]
    assert plan.changes[0][1].after == (
        "GrpTRES=cpu=128,gres/gpu=16,gres/gpu:h100=16,mem=1024000 MinTRESPerJob=gres/gpu=1 "
        "MaxWall=02:00:00"
    )  # 16 of the partition's 64000 MB and 8 CPUs per GPU
    assert rt.tenants.apply(s, actor=OPERATOR).changes == plan.changes
    assert rt.tenants.plan(s).empty
    assert rt.tenants.apply(s, actor=OPERATOR).empty
    assert accounts(slurm)[T] == f"computectl: tenant {T}"

    too_many = job_id(sbatch(slurm, nodes=3))  # 24 GPUs
    fits = job_id(sbatch(slurm, nodes=2))  # 16 GPUs
    slurm.wait(
        "the quota to hold back the big job",
        lambda: queue(slurm).get(too_many, ("", ""))[1] == "QOSGrpGRES",
    )
    slurm.wait("the job within the quota to run", lambda: queue(slurm)[fits][0] == "RUNNING")
    jobs = {j.id: (j.state, j.gpus) for j in rt.tenants.jobs(T)}
    assert jobs == {too_many: ("pending", 24), fits: ("running", 16)}

    rt.sweep()
    rows = capacity(rt.store.nodes(), rt.store.allocations()).tenants
    assert TenantRow(T, "training", "H100-SXM", 16) in rows
    assert rt.tenants.plan(s).empty

    # Usage from accounting, as `computectl tenants usage` reads it: the running job's 16
    # GPUs. slurmctld tells slurmdbd of the start a moment later: wait for sacct to show it.
    def counted() -> bool:
        rows = tenant_usage(rt, T, days=1).rows
        return any(r.pool == "training" and r.gpu_hours > 0 for r in rows)

    slurm.wait("sacct to count the running job", counted, 15)


def test_suspend_refuses_new_jobs_running_ones_continue_resume_lifts_it(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    rt.tenants.apply(spec(rt), actor=OPERATOR)
    running = job_id(sbatch(slurm))
    slurm.wait("the job to run", lambda: queue(slurm)[running][0] == "RUNNING")

    plan = rt.tenants.suspend(T, actor=OPERATOR)
    assert [(c.kind, c.target, c.after) for _, c in plan.changes] == [
        (
            ChangeKind.UPDATE,
            f"account {T}",
            f"Description='computectl: tenant {T}' GrpSubmitJobs=0 GrpJobs=0",
        )
    ]
    refused = sbatch(slurm, check=False)
    assert refused.returncode != 0
    assert "AssocGrpSubmitJobsLimit" in refused.stderr
    assert queue(slurm)[running][0] == "RUNNING"
    # apply keeps the suspension (only resume lifts it)
    assert rt.tenants.apply(spec(rt), actor=OPERATOR).empty

    rt.tenants.resume(T, actor=OPERATOR)
    after = job_id(sbatch(slurm))
    slurm.wait("a job after resume to run", lambda: queue(slurm)[after][0] == "RUNNING")
    assert queue(slurm)[running][0] == "RUNNING"


def test_delete_refuses_with_work_force_ends_it_and_removes_the_account(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    rt.tenants.apply(spec(rt), actor=OPERATOR)
    running = job_id(sbatch(slurm))
    slurm.wait("the job to run", lambda: queue(slurm)[running][0] == "RUNNING")
    with pytest.raises(RefusedError, match="1 running and 0 pending"):
        rt.tenants.delete(T, actor=OPERATOR)
    assert T in accounts(slurm)

    done = rt.tenants.delete(T, actor=OPERATOR, force=True, grace_seconds=5)
    assert {(c.kind, c.target) for _, c in done.changes} == {
        (ChangeKind.DELETE, f"association root@{T}/training"),
        (ChangeKind.DELETE, f"account {T}"),
        (ChangeKind.DELETE, f"qos {T}-training"),
    }
    assert queue(slurm) == {}
    assert T not in accounts(slurm)
    assert f"{T}-training" not in slurm.run("sacctmgr", "-P", "-n", "show", "qos", "format=name")
    assert rt.store.tenant(T) is None
    audit = rt.store.audit(target=T, limit=20)
    assert [a.action for a in audit] == ["tenant.delete", "tenant.cancel_jobs", "tenant.apply"]
    assert audit[1].detail["jobs"] == [running]
    assert len(audit[0].detail["changes"]) == 3 and len(audit[2].detail["changes"]) == 3


def test_an_admins_account_of_the_same_name_is_refused_and_left_alone(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    slurm.run("sacctmgr", "-i", "add", "account", T, "Description=lab of prof. x")
    try:
        with pytest.raises(RefusedError, match="made outside computectl"):
            rt.tenants.apply(spec(rt), actor=OPERATOR)
        assert accounts(slurm)[T] == "lab of prof. x"
        assert f"{T}-training" not in slurm.run(
            "sacctmgr", "-P", "-n", "show", "qos", "format=name"
        )
        assert rt.store.tenant(T) is None
        assert T not in rt.backends.tenants_by_pool["training"].managed()
    finally:
        slurm.run("sacctmgr", "-i", "delete", "account", T)


def test_slurmdbd_stopped_before_apply_fails_clearly_and_the_next_apply_converges(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    rt.tenants.apply(spec(rt, gpus=16), actor=OPERATOR)
    before = rt.store.tenant(T)
    stop_slurmdbd(slurm)
    try:
        with pytest.raises(BackendError, match=f"nothing changed: {DBD_DOWN}$"):
            rt.tenants.apply(spec(rt, gpus=24), actor=OPERATOR)
        assert rt.store.tenant(T) == before
    finally:
        slurm.up()
    done = rt.tenants.apply(spec(rt, gpus=24), actor=OPERATOR)
    assert [(c.kind, c.target, c.after) for _, c in done.changes] == [
        (
            ChangeKind.UPDATE,
            f"qos {T}-training",
            "GrpTRES=cpu=192,gres/gpu=24,gres/gpu:h100=24,mem=1536000 MinTRESPerJob=gres/gpu=1",
        )
    ]
    assert rt.tenants.plan(spec(rt, gpus=24)).empty
    assert rt.store.tenant(T) != before


# -- outages in the middle of an apply (issue 9, item 7) ------------------------------------------


def dbd_stopper(slurm: SlurmCluster, tmp_path: Path) -> Path:
    """A bin dir of Slurm's real tools whose sacctmgr stops the real slurmdbd right after
    the first change it made: an outage in the middle of an apply."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sinfo", "squeue", "scontrol", "scancel", "sacct", "sbatch", "srun"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    pids = slurm.state_dir / "pids" / "slurmdbd.pid"
    script = bin_dir / "sacctmgr"
    script.write_text(
        f'#!/bin/sh\n{shutil.which("sacctmgr")} "$@"; rc=$?\n'
        f'if [ "$1" = -i ] && [ $rc = 0 ] && [ ! -e {tmp_path}/stopped ]; then\n'
        f"  : > {tmp_path}/stopped; pid=$(cut -d' ' -f1 {pids}); kill $pid\n"
        "  while [ -e /proc/$pid ]; do sleep 0.1; done\nfi\nexit $rc\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_an_apply_cut_by_a_slurmdbd_outage_reports_exactly_what_it_made(
    rt: Runtime, slurm: SlurmCluster, tmp_path: Path
) -> None:
    tenants = slurm_tenants(slurm, dbd_stopper(slurm, tmp_path))
    try:
        with pytest.raises(Interrupted) as err:
            tenants.apply(spec(rt))
        assert [(c.kind, c.target) for c in err.value.done] == [
            (ChangeKind.CREATE, f"qos {T}-training")
        ]
        assert isinstance(err.value.cause, Unreachable)
        assert re.fullmatch(DBD_DOWN, str(err.value.cause))
    finally:
        slurm.up()
    assert f"{T}-training" in slurm.run("sacctmgr", "-P", "-n", "show", "qos", "format=name")
    assert [c.target for c in tenants.plan(spec(rt))] == [
        f"account {T}",
        f"association root@{T}/training",
    ]


def computectl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "computectl"), *args],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "COMPUTECTL_CONFIG": str(config), "NO_COLOR": "1"},
    )  # fmt: skip


def test_the_cli_exits_4_when_an_outage_cuts_an_apply_and_3_when_nothing_changed(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "computectl.toml"
    toml = slurm.computectl_toml.read_text()
    bin_dir = dbd_stopper(slurm, tmp_path)
    config.write_text(
        f'data_dir = "{data}"\n'
        + toml.replace("[pools.slurm]\n", f'[pools.slurm]\nbin_dir = "{bin_dir}"\n')
    )
    spec_file = tmp_path / "tenant.toml"
    spec_file.write_text(
        f'[tenant]\nname = "{T}"\nusers = ["root"]\n'
        '[[tenant.quotas]]\npool = "training"\ngpus = 16\n'
    )
    try:
        cut = computectl(config, "tenants", "apply", str(spec_file))
        # slurmdbd is still down: this apply changes nothing
        down = computectl(config, "tenants", "apply", str(spec_file))
    finally:
        slurm.up()
    assert cut.returncode == 4, cut.stderr
    assert len(cut.stderr.strip().splitlines()) == 1, cut.stderr
    assert "stopped after 1 change(s)" in cut.stderr and re.search(DBD_DOWN, cut.stderr)
    assert down.returncode == 3, down.stderr
    assert len(down.stderr.strip().splitlines()) == 1, down.stderr
    assert "nothing changed" in down.stderr and re.search(DBD_DOWN, down.stderr)

    after = runtime_over(slurm.computectl_toml, data)
    try:
        audit = after.store.audit(target=T, limit=10)
        assert [a.action for a in audit] == ["tenant.apply.partial"]
        assert [(c["kind"], c["target"]) for c in audit[0].detail["changes"]] == [
            ("create", f"qos {T}-training")
        ]
        # Partly live, and said so: listed as partial; delete finds it.
        record = after.store.tenant(T)
        assert record is not None and record.state == "partial"
        listed = computectl(config, "tenants", "list", "-o", "json")
        assert listed.returncode == 0 and '"partial"' in listed.stdout
        gone = computectl(config, "tenants", "delete", T)
        assert gone.returncode == 0, gone.stderr
        assert after.store.tenant(T) is None and T not in slurm_tenants(slurm).managed()
        # Applied again it converges; the fixture-less cleanup takes it back.
        after.tenants.apply(spec(after), actor=OPERATOR)
        assert after.tenants.plan(spec(after)).empty
        assert after.store.tenant(T).state == "active"  # type: ignore[union-attr]
    finally:
        after.close()
        slurm_tenants(slurm).delete(T, force=True, grace_seconds=0)
