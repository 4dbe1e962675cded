"""Tenants' own users on the real Slurm test cluster (testenv/slurm), as themselves.

Local login users (created with useradd, kept between runs) submit with their own uid
through the slurm.conf every user can read: the GPU quota holds for every way a job asks
for GPUs, the quota cannot be side-stepped, and DefaultAccounts survive tenant deletion.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from scheduler.tenants import ChangeKind, TenantSpec
from tests.integration.conftest import SlurmCluster, runtime_over
from tests.integration.test_slurm_tenants import OPERATOR, T, job_id, queue, slurm_tenants

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    """A control plane over the cluster's partitions; its tenants removed after."""
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    tenants = slurm_tenants(slurm)
    for name in tenants.managed():
        tenants.delete(name, force=True, grace_seconds=0)


ALICE, BOB = "ctl-alice", "ctl-bob"  # local users the tests create (useradd), kept
OTHER = "zeta-labs"
# Each way sbatch can ask for 8 GPUs on one node (Slurm 22.05's spellings).
GPU_FORMS = {
    "gres-typed": ("--gres=gpu:h100:8",),
    "gres-untyped": ("--gres=gpu:8",),
    "gpus-typed": ("--gpus=h100:8",),
    "gpus-untyped": ("--gpus=8",),
    "gpus-per-node": ("--gpus-per-node=8",),
    "gpus-per-task": ("-n", "8", "--gpus-per-task=1"),
    "gpus-per-socket": ("--sockets-per-node=2", "--gpus-per-socket=4"),
    "tres-per-task": ("-n", "8", "--tres-per-task=gres/gpu:1"),
}


@pytest.fixture(scope="session")
def local_users() -> tuple[str, ...]:
    """Login users of the tenants on this machine (idempotent; left for the next run)."""
    if os.geteuid() != 0:
        pytest.skip("creating local users needs root")
    for name in (ALICE, BOB):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
            )
    return (ALICE, BOB)


@pytest.fixture
def user_conf(slurm: SlurmCluster, local_users: tuple[str, ...]) -> Path:
    """The slurm.conf every local user can read (what `testenv/slurm env` exports)."""
    out = slurm.testenv("env").stdout
    conf = Path(re.search(r"^export SLURM_CONF=(.+)$", out, re.MULTILINE)[1])  # type: ignore[index]
    # Slurm drops users with their last association: start without ours.
    slurm.run("sacctmgr", "-i", "delete", "user", "where", f"name={ALICE},{BOB}", check=False)
    return conf


def as_user(user: str, conf: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client as a tenant's user would: their uid, no root anything."""
    pw = pwd.getpwnam(user)
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd="/tmp",
        user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
        env={"PATH": os.environ["PATH"], "HOME": "/tmp", "LC_ALL": "C", "SLURM_CONF": str(conf)},
    )  # fmt: skip


def sbatch_as(user: str, conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return as_user(
        user, conf, "sbatch", "--parsable", "-o", "/dev/null", *args, "--wrap", "sleep 300"
    )


def tenant(rt: Runtime, name: str, users: list[str], **gpus: int) -> TenantSpec:
    quotas = [{"pool": pool, "gpus": n} for pool, n in gpus.items()]
    return parse_tenant(
        {"name": name, "users": users, "quotas": quotas}, rt.settings.effective_pools
    )


def test_a_non_root_user_submits_and_runs_jobs_on_the_test_cluster(
    rt: Runtime, slurm: SlurmCluster, user_conf: Path
) -> None:
    rt.tenants.apply(tenant(rt, T, [ALICE], training=8), actor=OPERATOR)
    assert as_user(ALICE, user_conf, "squeue").returncode == 0
    batch = sbatch_as(ALICE, user_conf, "-A", T, "--gres=gpu:1")
    assert batch.returncode == 0, batch.stderr
    step = as_user(ALICE, user_conf, "srun", "-A", T, "--gres=gpu:1", "id", "-un")
    assert (step.returncode, step.stdout.strip()) == (0, ALICE), step.stderr
    slurm.wait("the user's batch job to run", lambda: queue(slurm)[job_id(batch)][0] == "RUNNING")


@pytest.mark.parametrize("form", GPU_FORMS)
def test_the_gpu_quota_holds_however_a_job_asks_for_gpus(
    form: str, rt: Runtime, slurm: SlurmCluster, user_conf: Path
) -> None:
    option = GPU_FORMS[form][-1].split("=")[0]
    if option not in slurm.run("sbatch", "--help"):
        version = slurm.run("sbatch", "--version").strip()
        pytest.skip(f"{version}'s sbatch has no {option} (unrecognized option)")
    rt.tenants.apply(tenant(rt, T, [ALICE], training=16), actor=OPERATOR)
    ids = []
    for _ in range(3):  # 3 x 8 GPUs against 16; the partition has 48 free
        proc = sbatch_as(ALICE, user_conf, "-A", T, "-p", "training", "-N", "1", *GPU_FORMS[form])
        assert proc.returncode == 0, proc.stderr
        ids.append(job_id(proc))

    def held_back() -> bool:
        states = sorted(queue(slurm)[i] for i in ids)
        return states == [("PENDING", "QOSGrpGRES"), ("RUNNING", "None"), ("RUNNING", "None")]

    slurm.wait("two jobs to run and the third to wait on the QOS", held_back)
    assert sum(j.gpus for j in rt.tenants.jobs(T) if j.state == "running") == 16
    # slurmctld's own count: used (in brackets) never above the limit on either TRES
    qos = slurm.run("scontrol", "show", "assoc_mgr", "flags=qos", f"qos={T}-training")
    assert "gres/gpu=16(16)" in qos and "gres/gpu:h100=16(16)" in qos


def test_a_tenant_cannot_side_step_its_pool_quota(
    rt: Runtime, slurm: SlurmCluster, user_conf: Path
) -> None:
    rt.tenants.apply(tenant(rt, T, [ALICE], training=8, inference=8), actor=OPERATOR)
    for args, refusal in [
        (("-p", "training", f"--qos={T}-inference"), "Invalid qos specification"),
        (("-p", "training", "--qos=normal"), "Invalid qos specification"),
        (("-p", "training,inference"), "Multiple partition job request not supported"),
        (("-A", "root", "-p", "training"), "Invalid account"),
    ]:
        proc = sbatch_as(ALICE, user_conf, "-A", T, *args, "--gres=gpu:8")
        assert proc.returncode != 0 and refusal in proc.stderr, (args, proc.stderr)
    assert queue(slurm) == {}


# -- the GPU quota bounds everything a job can hold in the pool ------------------------------------


def test_jobs_without_a_gpu_never_start_in_a_gpu_pool_and_block_no_one(
    rt: Runtime, slurm: SlurmCluster, user_conf: Path
) -> None:
    # The hostile case: 8 GPUs bought, six whole-node CPU-only jobs once took 5 nodes.
    rt.tenants.apply(tenant(rt, T, [ALICE], training=8), actor=OPERATOR)
    ids = []
    for _ in range(6):
        proc = sbatch_as(ALICE, user_conf, "-A", T, "-p", "training", "-N", "1", "-n", "64")
        assert proc.returncode == 0, proc.stderr  # 22.05.8 accepts it; the QOS holds it
        ids.append(job_id(proc))
    slurm.wait(
        "every CPU-only job to pend on the QOS's MinTRESPerJob",
        lambda: all(queue(slurm).get(i) == ("PENDING", "QOSMinGRES") for i in ids),
    )
    # The pool is the operator's: root's GPU job runs at once.
    other = slurm.run(
        "sbatch", "--parsable", "-A", "root", "-p", "training", "--gres=gpu:1",
        "-o", "/dev/null", "--wrap", "sleep 300",
    ).strip()  # fmt: skip
    slurm.wait("root's GPU job to run", lambda: other in slurm.running_jobs())
    slurm.run("scontrol", "reconfigure")  # a scheduling pass: still pending
    assert all(queue(slurm)[i] == ("PENDING", "QOSMinGRES") for i in ids)
    qos = slurm.run("scontrol", "show", "assoc_mgr", "flags=qos", f"qos={T}-training")
    assert "cpu=64(0)" in qos and "gres/gpu=8(0)" in qos


# Ways one job with one GPU asks for a whole node's CPUs or memory.
WHOLE_NODE = {
    "all-cpus": (("-n", "64"), "QOSGrpCpuLimit"),
    "exclusive": (("--exclusive",), "QOSGrpCpuLimit"),
    "all-memory": (("--mem=0",), "QOSGrpMemLimit"),
    "most-memory": (("--mem=300000",), "QOSGrpMemLimit"),
}


@pytest.mark.parametrize("form", WHOLE_NODE)
def test_one_gpu_jobs_cannot_hold_more_cpus_or_memory_than_the_gpus_bought(
    form: str, rt: Runtime, slurm: SlurmCluster, user_conf: Path
) -> None:
    args, reason = WHOLE_NODE[form]
    rt.tenants.apply(tenant(rt, T, [ALICE], training=8), actor=OPERATOR)  # 1 node's worth
    ids = []
    for _ in range(3):
        proc = sbatch_as(
            ALICE, user_conf, "-A", T, "-p", "training", "-N", "1", "--gres=gpu:1", *args
        )
        assert proc.returncode == 0, proc.stderr
        ids.append(job_id(proc))

    def held_back() -> bool:
        states = sorted(queue(slurm)[i] for i in ids)
        return states == [("PENDING", reason), ("PENDING", reason), ("RUNNING", "None")]

    slurm.wait(f"one job to run and two to wait on {reason}", held_back)
    qos = slurm.run("scontrol", "show", "assoc_mgr", "flags=qos", f"qos={T}-training")
    # slurmctld's own count: held (in brackets) never above one node's worth
    grp = re.search(r"^\s*GrpTRES=(\S+)", qos, re.MULTILINE)[1]  # type: ignore[index]
    held = {k: (int(v), int(n)) for k, v, n in re.findall(r"(\w+)=(\d+)\((\d+)\)", grp)}
    assert held["cpu"][0] == 64 and held["mem"][0] == 512000, grp
    assert all(n <= limit for limit, n in held.values()), grp


def users(slurm: SlurmCluster) -> dict[str, str]:
    """Slurm's users → DefaultAccount."""
    out = slurm.run("sacctmgr", "-P", "-n", "show", "user", "format=User,DefaultAccount")
    return dict(ln.split("|", 1) for ln in out.splitlines())


def test_user_default_accounts_survive_tenant_deletion(
    rt: Runtime, slurm: SlurmCluster, user_conf: Path
) -> None:
    rt.tenants.apply(tenant(rt, T, [ALICE, BOB], training=16), actor=OPERATOR)
    rt.tenants.apply(tenant(rt, OTHER, [ALICE], training=8), actor=OPERATOR)
    assert users(slurm)[ALICE] == users(slurm)[BOB] == T  # Slurm made them with T's association

    done = rt.tenants.delete(T, actor=OPERATOR)
    assert ("slurm", ChangeKind.UPDATE, f"user {ALICE}", f"DefaultAccount={OTHER}") in [
        (b, c.kind, c.target, c.after) for b, c in done.changes
    ]
    assert users(slurm)[ALICE] == OTHER
    assert BOB not in users(slurm)  # made for T only: gone with its last association
    # ALICE's jobs without -A go to the tenant she is still in
    proc = sbatch_as(ALICE, user_conf, "-p", "training", "--gres=gpu:1")
    assert proc.returncode == 0, proc.stderr
    slurm.wait("her job to run", lambda: job_id(proc) in slurm.running_jobs())
    account = slurm.run("squeue", "-h", "-j", job_id(proc), "-o", "%a").strip()
    assert account == OTHER
    assert (
        BOB not in users(slurm) and as_user(BOB, user_conf, "sbatch", "--wrap", "true").returncode
    )
