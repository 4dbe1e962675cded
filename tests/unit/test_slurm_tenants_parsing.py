"""Tenants as Slurm accounting objects: reading sacctmgr/sacct/squeue output and the diff.

The samples are output of Slurm 22.05.8 on the testenv/slurm cluster, captured with the
exact format= lists computectl asks for, after `SlurmTenants.apply` of tenant
borealis-ai (users root and alice, 16 GPUs in training, 8 in inference, 100 GPU-hours,
90 min wall time, suspended) and an admin's account "admin-lab".
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import InvalidRequest, Unreachable
from scheduler.slurm import accounting as acc
from scheduler.slurm import fields, usage
from scheduler.slurm import users as slurm_users
from scheduler.slurm.commands import _rows
from scheduler.slurm.errors import classify, unreachable_line
from scheduler.slurm.shares import PoolShare
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
# sacctmgr -P -n show qos format=Name,GrpTRES,MinTRESPerJob,MaxWall,Preempt,PreemptMode,
#   Description
QOS = """\
normal|||||cluster|Normal QOS default
borealis-ai-inference|cpu=64,gres/gpu:h100=8,gres/gpu=8,mem=500G|gres/gpu=1|01:30:00||cluster|computectl: tenants in pool inference
borealis-ai-training|cpu=128,gres/gpu:h100=16,gres/gpu=16,mem=1000G|gres/gpu=1|01:30:00||cluster|computectl: tenants in pool training
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
# testenv/slurm's nodes: 64 CPUs, 512000 MB, 8 GPUs — 8 CPUs and 64000 MB per GPU.
NODE_SHARE = PoolShare("training", Fraction(8), Fraction(64000))
SHARES = {"training": NODE_SHARE, "inference": replace(NODE_SHARE, partition="inference")}
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
        acc.desired(SPEC, PARTITIONS, SHARES).qos if name == "borealis-ai" else (),
    )


def test_parsable_rows_keep_a_pipe_inside_the_last_field_and_pad_short_rows() -> None:
    assert _rows(ADMIN_TREE, 9)[0][-1] == "lab of prof. x | ml"
    assert _rows("a|b\n\n", 4) == [["a", "b", "", ""]]


def test_the_live_state_reads_back_as_exactly_what_the_spec_asks_for() -> None:
    state, foreign = live()
    assert foreign == []
    assert state == acc.desired(SPEC, PARTITIONS, SHARES)
    assert state.account is not None and state.account.suspended
    assert state.account.grp_tres_mins == {"gres/gpu": "6000"}
    assert state.qos["borealis-ai-training"].max_wall_minutes == 90
    assert acc.steps(state, acc.desired(SPEC, PARTITIONS, SHARES)) == []


def test_a_new_tenant_is_created_qos_first_in_sacctmgrs_words() -> None:
    empty, _ = live(tree="", qos="normal|||x\n")
    steps = acc.steps(empty, acc.desired(SPEC, PARTITIONS, SHARES))
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
        "Description=computectl: tenants in pool training",
        "GrpTRES=cpu=128,gres/gpu=16,gres/gpu:h100=16,mem=1024000", "MinTRESPerJob=gres/gpu=1",
        "MaxWall=90",
    )  # fmt: skip
    assert steps[2].args == (
        "add", "account", "borealis-ai", "Description=computectl: tenant borealis-ai",
        "Organization=computectl", "GrpTRESMins=gres/gpu=6000", "GrpSubmitJobs=0", "GrpJobs=0",
    )  # fmt: skip
    assert steps[-1].args == (
        "add", "user", "root", "account=borealis-ai", "partition=training",
        "qos=borealis-ai-training", "defaultqos=borealis-ai-training",
    )  # fmt: skip
    assert steps[1].change.after == (
        "GrpTRES=cpu=128,gres/gpu=16,gres/gpu:h100=16,mem=1024000 MinTRESPerJob=gres/gpu=1 "
        "MaxWall=01:30:00"
    )


def test_changes_are_one_line_per_object_and_clear_what_is_no_longer_limited() -> None:
    state, _ = live()
    resumed = TenantSpec("borealis-ai", ("root",), (GpuQuota("training", "H100-SXM", 24),))
    steps = acc.steps(state, acc.desired(resumed, PARTITIONS, SHARES))
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
        "GrpTRES=cpu=128,gres/gpu=16,gres/gpu:h100=16,mem=1024000 MinTRESPerJob=gres/gpu=1 "
        "MaxWall=01:30:00",
        "GrpTRES=cpu=192,gres/gpu=24,gres/gpu:h100=24,mem=1536000 MinTRESPerJob=gres/gpu=1",
    )
    assert qos.args[-2:] == (
        "MaxWall=-1", "GrpTRES=cpu=192,gres/gpu=24,gres/gpu:h100=24,mem=1536000",
    )  # fmt: skip
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
    qos = QOS + "borealis-ai-training-x|gres/gpu=1|||someone's\n"
    state, foreign = live(qos=qos.replace("computectl: tenants in pool training", "by hand"))
    assert foreign == ["qos borealis-ai-training (Description 'by hand')"]
    assert set(state.qos) == {"borealis-ai-inference"}  # a foreign QOS not wanted: ignored


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("01:30:00", 90), ("2-00:00:00", 2880), ("00:00:30", 1), ("45:00", 45), ("", None),
     ("UNLIMITED", None)],
)  # fmt: skip
def test_max_wall_reads_as_minutes(text: str, minutes: int | None) -> None:
    assert fields.parse_wall(text) == minutes
    if minutes is not None and text.endswith(":00") and text.count(":") == 2:
        assert fields.format_wall(minutes) == text


def test_jobs_of_the_account_from_squeue_json() -> None:
    jobs = usage.account_jobs(SQUEUE, "borealis-ai")
    assert [(j.id, j.state, j.gpus) for j in jobs] == [("15", "running", 16), ("16", "pending", 24)]


def test_unknown_gpu_models_and_foreign_pools_are_refused() -> None:
    assert acc.gres_type("H200") == "h200"
    with pytest.raises(InvalidRequest, match="no Slurm GRES type"):
        acc.gres_type("MI300X")
    with pytest.raises(InvalidRequest, match="not a partition of this Slurm cluster"):
        acc.desired(SPEC, {"training": "training"}, SHARES)


# -- the quota holds however a job asks for GPUs -------------------------------------------------


def test_each_pool_qos_limits_untyped_and_typed_gpus_alike() -> None:
    # Slurm counts a job on gres/gpu:h100 only when it names the type; on gres/gpu always.
    want = acc.desired(SPEC, PARTITIONS, SHARES)
    assert want.qos["borealis-ai-training"].grp_tres == {
        "gres/gpu": "16",
        "gres/gpu:h100": "16",
        "cpu": "128",
        "mem": "1024000",
    }


@pytest.mark.parametrize(
    "grp_tres",
    ["gres/gpu:h100=16", "gres/gpu=16", "gres/gpu:h100=16,gres/gpu=24",
     "gres/gpu:h100=16,gres/gpu=16,node=4"],
)  # fmt: skip
def test_plan_sees_drift_on_either_gpu_limit_and_on_added_limits(grp_tres: str) -> None:
    drifted = QOS.replace("gres/gpu:h100=16,gres/gpu=16", grp_tres)
    state, _ = live(qos=drifted)
    steps = acc.steps(state, acc.desired(SPEC, PARTITIONS, SHARES))
    assert [s.change.target for s in steps] == ["qos borealis-ai-training"]
    assert steps[0].args[-1].startswith("GrpTRES=")
    assert "gres/gpu=16" in steps[0].args[-1] and "gres/gpu:h100=16" in steps[0].args[-1]
    if "node" in grp_tres:
        assert "node=-1" in steps[0].args[-1]


# -- users leaving a tenant keep a usable DefaultAccount -----------------------------------------

# sacctmgr -P -n show user withassoc format=User,DefaultAccount,Account,Partition
#   where name=alice,bob,carol,dave  (alice: in two tenants, created by borealis-ai; bob: only
#   here; carol: an admin's user with her own account as default; dave: also in admin-lab
#   without a partition and in tenant zeta's training)
USERS = """alice|borealis-ai|borealis-ai|inference
alice|borealis-ai|borealis-ai|training
alice|borealis-ai|aurora-labs|training
bob|borealis-ai|borealis-ai|training
carol|admin-lab|admin-lab|
carol|admin-lab|borealis-ai|training
dave|borealis-ai|zeta|training
dave|borealis-ai|admin-lab|
dave|borealis-ai|borealis-ai|training
"""


def test_a_leaving_users_default_moves_to_an_account_they_keep_before_associations_go() -> None:
    users = slurm_users.read_users(_rows(USERS, len(slurm_users.USER_FIELDS)))
    moves = slurm_users.default_moves("borealis-ai", users, ["alice", "bob", "carol", "dave"])
    assert [(c.target, c.before, c.after) for c, _ in moves] == [
        ("user alice", "DefaultAccount=borealis-ai", "DefaultAccount=aurora-labs"),
        # an account without a partition serves every partition: it wins over zeta
        ("user dave", "DefaultAccount=borealis-ai", "DefaultAccount=admin-lab"),
    ]
    assert moves[0][1] == (
        "modify", "user", "where", "name=alice", "set", "DefaultAccount=aurora-labs",
    )  # fmt: skip
    # bob: sacctmgr deletes him with his last association; carol's default is not ours

    state, _ = live()
    steps = acc.steps(state, None, moves)
    kinds = [s.change.target.split()[0] for s in steps]
    assert kinds == ["user", "user", *["association"] * 4, "account", "qos", "qos"]


def test_users_leaving_are_those_with_no_association_left_in_the_tenant() -> None:
    state, _ = live()
    keep_root = TenantSpec("borealis-ai", ("root",), SPEC.quotas)
    want = acc.desired(keep_root, PARTITIONS, SHARES)
    assert slurm_users.leaving(state.associations, want.associations) == {"alice"}
    assert slurm_users.leaving(state.associations, {}) == {"alice", "root"}
    one_pool = TenantSpec("borealis-ai", ("root", "alice"), SPEC.quotas[:1])
    assert not slurm_users.leaving(
        state.associations, acc.desired(one_pool, PARTITIONS, SHARES).associations
    )


# -- outages read as one line --------------------------------------------------------------------

# sacctmgr 22.05.8 with slurmdbd stopped (stderr, exit status 1)
DBD_DOWN = """sacctmgr: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:127.0.0.1:17619: Connection refused
sacctmgr: error: Sending PersistInit msg: Connection refused
sacctmgr: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:127.0.0.1:17619: Connection refused
sacctmgr: error: Sending PersistInit msg: Connection refused
"""


@pytest.mark.parametrize(
    ("tool", "text", "line"),
    [
        ("sacctmgr", DBD_DOWN,
         "slurmdbd at 127.0.0.1:17619 is not answering (sacctmgr: Connection refused)"),
        ("sacctmgr", "sacctmgr: error: Problem talking to the database: Connection refused",
         "slurmdbd is not answering (sacctmgr: Problem talking to the database: "
         "Connection refused)"),
        ("squeue", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
         "slurmctld is not answering (squeue: Unable to contact slurm controller "
         "(connect failure))"),
        ("scontrol", "scontrol: error: Socket timed out on send/recv operation",
         "slurmctld is not answering (scontrol: Socket timed out on send/recv operation)"),
    ],
)  # fmt: skip
def test_an_outage_is_one_line_naming_the_daemon(tool: str, text: str, line: str) -> None:
    assert classify(text) is Unreachable
    assert unreachable_line(tool, text) == line


# -- outside input never breaks the readers ------------------------------------------------------

_SACCTMGR_TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from("|\n=,:-0123"),
    max_size=300,
)


@given(_SACCTMGR_TEXT, _SACCTMGR_TEXT, _SACCTMGR_TEXT)
def test_sacctmgr_output_of_any_shape_reads_without_crashing(
    tree: str, qos: str, users: str
) -> None:
    state, foreign = acc.read_state(
        "borealis-ai",
        _rows(tree, len(acc.TREE_FIELDS)),
        _rows(qos, len(acc.QOS_FIELDS)),
        PARTITIONS.values(),
        ("borealis-ai-training",),
    )
    acc.steps(state, acc.desired(SPEC, PARTITIONS, SHARES))
    acc.steps(state, None)
    assert all(isinstance(f, str) for f in foreign)
    acc.managed_names(_rows(tree, len(acc.ACCOUNT_FIELDS)), _rows(qos, len(acc.QOS_FIELDS)))
    read = slurm_users.read_users(_rows(users, len(slurm_users.USER_FIELDS)))
    slurm_users.default_moves("borealis-ai", read, read)


@given(_SACCTMGR_TEXT)
def test_field_readers_take_any_text(text: str) -> None:
    wall = fields.parse_wall(text)
    assert wall is None or wall >= 0
    assert all("," not in k for k in fields.parse_tres(text))
    assert all(len(r) == 4 for r in _rows(text, 4))
    assert unreachable_line("sacctmgr", text).startswith("slurm")


@given(st.integers(min_value=0, max_value=10**6))
def test_max_wall_round_trips(minutes: int) -> None:
    assert fields.parse_wall(fields.format_wall(minutes)) == minutes


def test_managed_tenants_are_found_by_their_account_or_a_qos_left_alone() -> None:
    accounts = _rows(
        "root|default root account\nborealis-ai|computectl: tenant borealis-ai\n"
        "admin-lab|lab of prof. x\n",
        len(acc.ACCOUNT_FIELDS),
    )
    qos = _rows(
        QOS + "aurora-labs-training|gres/gpu=16|||||computectl: tenant aurora-labs pool training\n"
        "x-y||||||computectl: tenant z pool w\n",
        len(acc.QOS_FIELDS),
    )
    assert acc.managed_names(accounts, qos) == {"borealis-ai", "aurora-labs"}
