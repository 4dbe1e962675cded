"""What Slurm itself enforces of a tenant beyond its quota (testenv/slurm runs
priority/multifactor with no usage decay or reset, AccountingStorageEnforce with safe, and
preempt/qos with REQUEUE):

* a GPU-hour budget spent holds the tenant's next job back (Slurm's own reason);
* an internal tenant (the operator's training) runs on GPUs customers leave idle, and a
  customer's job requeues it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.runtime import Runtime
from compute.services.tenants_batch import apply_many
from compute.tenants.spec import parse_tenant
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from scheduler.tenants import TenantSpec
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"


@pytest.fixture
def rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    slurm.reset()
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    tenants = SlurmTenants(
        SlurmCommands(slurm_conf=slurm.slurm_conf),
        {"training": "training", "inference": "inference"},
    )
    for name in tenants.managed():
        tenants.delete(name, force=True, grace_seconds=0)


def spec(rt: Runtime, name: str, gpus: int, **fields: Any) -> TenantSpec:
    data = {"name": name, "users": ["root"], "quotas": [{"pool": "training", "gpus": gpus}]}
    return parse_tenant({**data, **fields}, rt.settings.effective_pools)


def sbatch(slurm: SlurmCluster, account: str, *args: str) -> str:
    proc = subprocess.run(
        ["sbatch", "--parsable", "-A", account, "-p", "training", "-o", "/dev/null", *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SLURM_CONF": str(slurm.slurm_conf)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def job(slurm: SlurmCluster, job_id: str) -> dict[str, str]:
    """``scontrol show job``'s fields (JobState, Reason, Restarts, ...)."""
    out = slurm.run("scontrol", "-o", "show", "job", job_id)
    return dict(re.findall(r"(\w+)=(\S*)", out))


def test_a_tenant_whose_gpu_hour_budget_is_spent_is_held_back_by_slurm(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    # One GPU-minute: a one-GPU job with a one-minute limit fits (safe: a job starts only
    # if its limit fits in what is left), runs out its limit, and has spent it all.
    rt.tenants.apply(spec(rt, "budget-lab", 8, gpu_hours_budget=1 / 60), actor=OPERATOR)
    rows = slurm.run(
        "sacctmgr", "-P", "-n", "show", "assoc", "where", "account=budget-lab",
        "format=User,GrpTRESMins",
    )  # fmt: skip
    assert "|gres/gpu=1" in rows.splitlines()  # on the account: every pool, every user
    first = sbatch(slurm, "budget-lab", "--gres=gpu:h100:1", "--time=1", "--wrap", "sleep 300")
    slurm.wait("the first job to run", lambda: job(slurm, first)["JobState"] == "RUNNING", 60)
    slurm.wait(
        "the first job to reach its time limit",
        lambda: job(slurm, first)["JobState"] in ("TIMEOUT", "COMPLETED", "CANCELLED"),
        150,
    )
    second = sbatch(slurm, "budget-lab", "--gres=gpu:h100:1", "--time=1", "--wrap", "true")
    slurm.wait(
        "the second job to be held back for the budget",
        lambda: re.fullmatch(r"AssocGrpGRES\w*Min\w*", job(slurm, second)["Reason"]) is not None,
        60,
    )
    assert job(slurm, second)["JobState"] == "PENDING"
    # another tenant with budget left runs at once
    rt.tenants.apply(spec(rt, "budget-ok", 8, gpu_hours_budget=10), actor=OPERATOR)
    other = sbatch(slurm, "budget-ok", "--gres=gpu:h100:1", "--time=1", "--wrap", "sleep 30")
    slurm.wait("the other tenant's job to run", lambda: job(slurm, other)["JobState"] == "RUNNING")
    assert job(slurm, second)["JobState"] == "PENDING"


def test_an_internal_tenant_borrows_idle_gpus_and_a_customer_takes_them_back(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    # training: 6 nodes x 8 GPUs. The customer bought 16 and uses none; the operator's
    # own training may use the whole partition.
    ops = spec(rt, "ops-train", 48, internal=True)
    customer = spec(rt, "cust-a", 16)
    batch = apply_many(rt.tenants, [customer, ops], OPERATOR)
    assert not batch.refused
    preempt = slurm.run(
        "sacctmgr", "-P", "-n", "show", "qos", "where", "name=cust-a-training,ops-train-training",
        "format=Name,Preempt,PreemptMode",
    )  # fmt: skip
    assert set(preempt.split()) == {
        "cust-a-training|ops-train-training|cluster",
        "ops-train-training||requeue",
    }
    internal = [
        sbatch(slurm, "ops-train", "-N1", "--gres=gpu:h100:8", "--wrap", "sleep 600")
        for _ in range(6)
    ]
    slurm.wait(
        "the internal jobs to hold every GPU of the partition",
        lambda: all(job(slurm, j)["JobState"] == "RUNNING" for j in internal),
        60,
    )
    mine = sbatch(slurm, "cust-a", "-N1", "--gres=gpu:h100:8", "--wrap", "sleep 600")
    slurm.wait("the customer's job to run", lambda: job(slurm, mine)["JobState"] == "RUNNING", 90)
    states = {j: job(slurm, j) for j in internal}
    requeued = [j for j, f in states.items() if f["Restarts"] != "0"]
    assert len(requeued) == 1, states
    assert states[requeued[0]]["JobState"] in ("PENDING", "REQUEUED", "REQUEUE_HOLD"), states
    assert sum(f["JobState"] == "RUNNING" for f in states.values()) == 5
