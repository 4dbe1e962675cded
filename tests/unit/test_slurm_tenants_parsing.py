"""Tenants as Slurm accounting objects: reading sacctmgr/sacct/squeue output and the diff.

The samples are output of Slurm 22.05.8 on the testenv/slurm cluster, captured with the
exact format= lists computectl asks for, after `SlurmTenants.apply` of tenant
borealis-ai (users root and alice, 16 GPUs in training, 8 in inference, 100 GPU-hours,
90 min wall time, suspended) and an admin's account "admin-lab".
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler.errors import InvalidRequest
from scheduler.slurm import accounting as acc
from scheduler.slurm.commands import _rows
from scheduler.tenants import ChangeKind, GpuQuota, TenantSpec

# sacctmgr -P -n show account format=Account,User,Partition,QOS,DefaultQOS,GrpTRESMins,GrpJobs,
#   GrpSubmit,Description where withassoc name=borealis-ai
TREE = """\
borealis-ai|||normal||gres/gpu=6000|0|0|computectl: tenant borealis-ai
borealis-ai|root|inference|borealis-ai-inference|borealis-ai-inference||||computectl: tenant borealis-ai
borealis-ai|alice|training|borealis-ai-training|borealis-ai-training||||computectl: tenant borealis-ai
borealis-ai|alice|inference|borealis-ai-inference|borealis-ai-inference||||computectl: tenant borealis-ai
borealis-ai|root|training|borealis-ai-training|borealis-ai-training||||computectl: tenant borealis-ai
"""
# ... where withassoc name=admin-lab (an admin's account)
ADMIN_TREE = "admin-lab|||normal|||||lab of prof. x | ml\n"
# sacctmgr -P -n show qos format=Name,GrpTRES,MaxWall,Description
QOS = """\
normal|||Normal QOS default
borealis-ai-inference|gres/gpu:h100=8|01:30:00|computectl: tenant borealis-ai pool inference
borealis-ai-training|gres/gpu:h100=16|01:30:00|computectl: tenant borealis-ai pool training
"""
# sacct -P -n --format=JobID,Start,End,ElapsedRaw,AllocTRES -a -X -A borealis-ai -S .. -E ..
SACCT = """\
14|2026-11-26T04:38:26|2026-11-26T04:38:29|3|billing=1,cpu=1,gres/gpu:h100=4,gres/gpu=4,node=1
15|2026-11-26T04:38:30|Unknown|2|billing=2,cpu=2,gres/gpu:h100=16,gres/gpu=16,node=2
16|Unknown|Unknown|0|
"""
# squeue --json, trimmed to the fields read (a finished, a running and a held-back job).
SQUEUE = {
    "jobs": [
        {
            "job_id": 14, "account": "borealis-ai", "job_state": "COMPLETED", "node_count": 1,
            "tres_req_str": "cpu=1,mem=500G,node=1,billing=1,gres/gpu=4,gres/gpu:h100=4",
            "tres_alloc_str": "cpu=1,node=1,billing=1,gres/gpu=4,gres/gpu:h100=4",
            "tres_per_node": "gres:gpu:h100:4",
        },
        {
            "job_id": 15, "account": "borealis-ai", "job_state": "RUNNING", "node_count": 2,
            "tres_req_str": "cpu=2,mem=1000G,node=2,billing=2,gres/gpu=16,gres/gpu:h100=16",
            "tres_alloc_str": "cpu=2,node=2,billing=2,gres/gpu=16,gres/gpu:h100=16",
            "tres_per_node": "gres:gpu:h100:8",
        },
        {
            "job_id": 16, "account": "borealis-ai", "job_state": "PENDING", "node_count": 3,
            "state_reason": "QOSGrpGRES",
            "tres_req_str": "cpu=3,mem=1500G,node=3,billing=3,gres/gpu=24,gres/gpu:h100=24",
            "tres_alloc_str": "", "tres_per_node": "gres:gpu:h100:8",
        },
        {"job_id": 17, "account": "root", "job_state": "RUNNING", "tres_alloc_str": "gres/gpu=8"},
    ]
}  # fmt: skip
PARTITIONS = {"training": "training", "inference": "inference"}
SPEC = TenantSpec(
    "borealis-ai",
    ("root", "alice"),
    (GpuQuota("training", "H100-SXM", 16), GpuQuota("inference", "H100-SXM", 8)),
    gpu_hours_budget=100.0,
    max_wall_time_minutes=90,
    suspended=True,
)


def live(
    tree: str = TREE, qos: str = QOS, name: str = "borealis-ai"
) -> tuple[acc.TenantState, list[str]]:
    return acc.read_state(
        name,
        _rows(tree, len(acc.TREE_FIELDS)),
        _rows(qos, len(acc.QOS_FIELDS)),
        PARTITIONS.values(),
        acc.desired(SPEC, PARTITIONS).qos if name == "borealis-ai" else (),
    )


def test_parsable_rows_keep_a_pipe_inside_the_last_field_and_pad_short_rows() -> None:
    assert _rows(ADMIN_TREE, 9)[0][-1] == "lab of prof. x | ml"
    assert _rows("a|b\n\n", 4) == [["a", "b", "", ""]]


def test_the_live_state_reads_back_as_exactly_what_the_spec_asks_for() -> None:
    state, foreign = live()
    assert foreign == []
    assert state == acc.desired(SPEC, PARTITIONS)
    assert state.account is not None and state.account.suspended
    assert state.account.grp_tres_mins == {"gres/gpu": "6000"}
    assert state.qos["borealis-ai-training"].max_wall_minutes == 90
    assert acc.steps(state, acc.desired(SPEC, PARTITIONS)) == []


def test_a_new_tenant_is_created_qos_first_in_sacctmgrs_words() -> None:
    empty, _ = live(tree="", qos="normal|||x\n")
    steps = acc.steps(empty, acc.desired(SPEC, PARTITIONS))
    assert [(s.change.kind, s.change.target) for s in steps] == [
        (ChangeKind.CREATE, "qos borealis-ai-inference"),
        (ChangeKind.CREATE, "qos borealis-ai-training"),
        (ChangeKind.CREATE, "account borealis-ai"),
        (ChangeKind.CREATE, "association alice@borealis-ai/inference"),
        (ChangeKind.CREATE, "association alice@borealis-ai/training"),
        (ChangeKind.CREATE, "association root@borealis-ai/inference"),
        (ChangeKind.CREATE, "association root@borealis-ai/training"),
    ]
    assert steps[1].args == (
        "add", "qos", "borealis-ai-training",
        "Description=computectl: tenant borealis-ai pool training",
        "GrpTRES=gres/gpu:h100=16", "MaxWall=90",
    )  # fmt: skip
    assert steps[2].args == (
        "add", "account", "borealis-ai", "Description=computectl: tenant borealis-ai",
        "Organization=computectl", "GrpTRESMins=gres/gpu=6000", "GrpSubmitJobs=0", "GrpJobs=0",
    )  # fmt: skip
    assert steps[-1].args == (
        "add", "user", "root", "account=borealis-ai", "partition=training",
        "qos=borealis-ai-training", "defaultqos=borealis-ai-training",
    )  # fmt: skip
    assert steps[1].change.after == "GrpTRES=gres/gpu:h100=16 MaxWall=01:30:00"


def test_changes_are_one_line_per_object_and_clear_what_is_no_longer_limited() -> None:
    state, _ = live()
    resumed = TenantSpec("borealis-ai", ("root",), (GpuQuota("training", "H100-SXM", 24),))
    steps = acc.steps(state, acc.desired(resumed, PARTITIONS))
    by_target = {s.change.target: s for s in steps}
    assert [(s.change.kind, s.change.target) for s in steps] == [
        (ChangeKind.UPDATE, "qos borealis-ai-training"),
        (ChangeKind.UPDATE, "account borealis-ai"),
        (ChangeKind.DELETE, "association alice@borealis-ai/inference"),
        (ChangeKind.DELETE, "association alice@borealis-ai/training"),
        (ChangeKind.DELETE, "association root@borealis-ai/inference"),
        (ChangeKind.DELETE, "qos borealis-ai-inference"),
    ]
    qos = by_target["qos borealis-ai-training"]
    assert (qos.change.before, qos.change.after) == (
        "GrpTRES=gres/gpu:h100=16 MaxWall=01:30:00",
        "GrpTRES=gres/gpu:h100=24",
    )
    assert qos.args[-2:] == ("MaxWall=-1", "GrpTRES=gres/gpu:h100=24")
    account = by_target["account borealis-ai"]
    assert account.args == (
        "modify", "account", "where", "name=borealis-ai", "set",
        "GrpSubmitJobs=-1", "GrpJobs=-1", "GrpTRESMins=gres/gpu=-1",
    )  # fmt: skip
    assert account.change.after == "Description='computectl: tenant borealis-ai'"


def test_delete_goes_associations_account_then_qos() -> None:
    state, _ = live()
    steps = acc.steps(state, None)
    assert [s.change.target.split()[0] for s in steps] == [
        *["association"] * 4, "account", "qos", "qos",
    ]  # fmt: skip
    assert all(s.change.kind is ChangeKind.DELETE and s.change.after == "" for s in steps)
    assert steps[4].args == ("delete", "account", "where", "name=borealis-ai")


def test_an_account_or_qos_without_our_marker_is_foreign_and_never_ours() -> None:
    state, foreign = live(tree=ADMIN_TREE, name="admin-lab")
    assert state.account is None and foreign == [
        "account admin-lab (Description 'lab of prof. x | ml')"
    ]
    qos = QOS + "borealis-ai-training-x|gres/gpu=1||someone's\n"
    state, foreign = live(
        qos=qos.replace("computectl: tenant borealis-ai pool training", "by hand")
    )
    assert foreign == ["qos borealis-ai-training (Description 'by hand')"]
    assert set(state.qos) == {"borealis-ai-inference"}  # a foreign QOS not wanted: ignored


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("01:30:00", 90), ("2-00:00:00", 2880), ("00:00:30", 1), ("45:00", 45), ("", None),
     ("UNLIMITED", None)],
)  # fmt: skip
def test_max_wall_reads_as_minutes(text: str, minutes: int | None) -> None:
    assert acc.parse_wall(text) == minutes
    if minutes is not None and text.endswith(":00") and text.count(":") == 2:
        assert acc.format_wall(minutes) == text


def test_jobs_of_the_account_from_squeue_json() -> None:
    jobs = acc.account_jobs(SQUEUE, "borealis-ai")
    assert [(j.id, j.state, j.gpus) for j in jobs] == [("15", "running", 16), ("16", "pending", 24)]


def test_gpu_seconds_clip_each_job_to_the_window() -> None:
    rows = _rows(SACCT, len(acc.SACCT_FIELDS))
    t = datetime(2026, 11, 26, 4, 38, tzinfo=UTC)
    at = t.replace
    # job 14: 4 GPUs for 3 s; job 15 (running): 16 GPUs for 10 s to the window's end; 16 never ran
    assert acc.gpu_seconds(rows, t, at(second=40), UTC) == 4 * 3 + 16 * 10
    assert acc.gpu_seconds(rows, at(second=28), at(second=40), UTC) == 4 * 1 + 16 * 10
    assert acc.gpu_seconds(rows, at(second=29), at(second=30), UTC) == 0


def test_unknown_gpu_models_and_foreign_pools_are_refused() -> None:
    assert acc.gres_type("H200") == "h200"
    with pytest.raises(InvalidRequest, match="no Slurm GRES type"):
        acc.gres_type("MI300X")
    with pytest.raises(InvalidRequest, match="not a partition of this Slurm cluster"):
        acc.desired(SPEC, {"training": "training"})
