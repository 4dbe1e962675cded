"""Many tenants' sacctmgr steps as few transactions (pure): what is grouped, in what order,
the load file's text, and which QOS are computectl's and whose."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import InvalidRequest
from scheduler.slurm import accounting as acc
from scheduler.slurm import tenants_batch as tb
from scheduler.slurm.qos import qos_description, qos_name, qos_owner
from scheduler.slurm.shares import PoolShare
from scheduler.tenants import GpuQuota, TenantSpec

PARTITIONS = {"training": "training", "inference": "inference"}
SHARES = {
    "training": PoolShare("training", Fraction(8), Fraction(64000)),
    "inference": PoolShare("inference", Fraction(8), Fraction(64000)),
}
TENANT = st.from_regex(r"[a-z][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
POOL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True)


def created(name: str, gpus: int = 8, users: tuple[str, ...] = ("root",)) -> list[acc.Step]:
    spec = TenantSpec(
        name, users, (GpuQuota("training", "H100-SXM", gpus),), gpu_hours_budget=100.0
    )
    return acc.steps(acc.TenantState(name), acc.desired(spec, PARTITIONS, SHARES))


def test_new_tenants_are_one_add_qos_per_quota_and_one_load() -> None:
    steps = {f"t{i:03d}": created(f"t{i:03d}") for i in range(100)}
    steps["big"] = created("big", gpus=16)
    writes = tb.writes(steps, "computectl")
    assert [w.args[:2] for w in writes] == [("add", "qos"), ("add", "qos"), ("load",)]
    same, big, load = writes
    assert same.args[2] == ",".join(f"t{i:03d}-training" for i in range(100))
    assert same.args[3] == "Description=computectl: tenants in pool training"
    assert big.args[2] == "big-training" and "gres/gpu=16" in big.args[4]
    # every change is accounted to its tenant, once
    every = [(t, c.target) for w in writes for t, c in w.changes]
    assert len(every) == len(set(every)) == 101 * 3
    lines = load.load.splitlines()
    assert lines[:3] == [
        "Cluster - 'computectl'",
        "Parent - 'root'",
        "Account - 't000':Description='computectl: tenant t000':Organization='computectl'"
        ":GrpTRESMins='gres/gpu=6000'",
    ]
    assert "Parent - 't000'" in lines
    assert (
        "User - 'root':Partition='training':QOS='t000-training':DefaultQOS='t000-training'" in lines
    )


def test_the_same_change_of_many_objects_is_one_modify_and_associations_stay_exact() -> None:
    qos_a = acc.Step(acc._update("qos a-training", "x", "y"), _modify("qos", "a-training"))
    qos_b = acc.Step(acc._update("qos b-training", "x", "y"), _modify("qos", "b-training"))
    assoc = acc.Step(
        acc._update("association u@a/training", "x", "y"),
        ("modify", "user", "where", "name=u", "account=a", "partition=training",
         "set", "qos=a-training", "defaultqos=a-training"),
    )  # fmt: skip
    writes = tb.writes({"a": [qos_a, assoc], "b": [qos_b]}, "")
    assert [w.args for w in writes] == [
        ("modify", "qos", "where", "name=a-training,b-training", "set", "MaxWall=60"),
        ("modify", "user", "where", "name=u", "account=a", "partition=training",
         "set", "qos=a-training", "defaultqos=a-training"),
    ]  # fmt: skip
    assert not any(w.load for w in writes)  # nothing new: no load, no cluster name needed


def _modify(entity: str, name: str) -> tuple[str, ...]:
    return ("modify", entity, "where", f"name={name}", "set", "MaxWall=60")


def test_deletions_are_not_batched() -> None:
    live, _ = acc.read_state(
        "gone", [["gone", "", "", "", "", "", "", "", "computectl: tenant gone"]], [], ["x"]
    )
    with pytest.raises(InvalidRequest, match="cannot batch"):
        tb.writes({"gone": acc.steps(live, None)}, "computectl")


@given(st.text(max_size=40))
def test_a_load_file_value_is_quoted_whole_or_refused(value: str) -> None:
    try:
        quoted = tb._quoted(value)
    except InvalidRequest as exc:
        assert set(value) & set("'\"\n\r") and "\n" not in str(exc)  # noqa: PT017
        return
    assert quoted == f"'{value}'" and quoted.count("'") == 2 and "\n" not in quoted


@given(TENANT, POOL)
def test_a_qos_belongs_to_the_tenant_its_name_and_pool_say(tenant: str, pool: str) -> None:
    qname = qos_name(tenant, pool)
    assert qos_owner(qname, qos_description(pool)) == tenant
    # the description each QOS had before, naming its tenant: still ours
    assert qos_owner(qname, f"computectl: tenant {tenant} pool {pool}") == tenant
    assert qos_owner(qname, "by hand") is None
    assert qos_owner(qname, qos_description(f"{pool}x")) is None


def test_a_name_two_ways_is_read_by_its_pool() -> None:
    # tenant a-b in pool c, or tenant a in pool b-c: the same QOS name, told apart
    assert qos_owner("a-b-c", qos_description("c")) == "a-b"
    assert qos_owner("a-b-c", qos_description("b-c")) == "a"
    assert qos_owner("c", qos_description("c")) is None


def test_customer_qos_preempt_the_internal_tenants_qos_which_are_made_first() -> None:
    ops = TenantSpec("ops", ("root",), (GpuQuota("training", "H100-SXM", 48),), internal=True)
    cust = TenantSpec("cust", ("root",), (GpuQuota("training", "H100-SXM", 16),))
    live_internal = [
        ["old-ops-training", "", "", "", "", "requeue", qos_description("training", True)]
    ]
    internal = acc.internal_by_pool(live_internal, [ops, cust])
    assert internal == {"training": ["old-ops-training", "ops-training"]}
    mine = acc.desired(ops, PARTITIONS, SHARES, internal).qos["ops-training"]
    theirs = acc.desired(cust, PARTITIONS, SHARES, internal).qos["cust-training"]
    assert (mine.preempt, mine.preempt_mode, mine.internal) == ((), "requeue", True)
    assert theirs.preempt == ("old-ops-training", "ops-training") and not theirs.internal
    assert theirs.line().endswith("Preempt=old-ops-training,ops-training")
    # a tenant no longer internal: its live QOS no longer counts
    assert acc.internal_by_pool(live_internal, [TenantSpec("old-ops")]) == {}
    steps = {
        t.name: acc.steps(acc.TenantState(t.name), acc.desired(t, PARTITIONS, SHARES, internal))
        for t in (cust, ops)
    }
    writes = tb.writes(steps, "computectl")
    assert [w.args[2] for w in writes[:2]] == ["ops-training", "cust-training"]
    assert "PreemptMode=requeue" in writes[0].args
    assert "Preempt=old-ops-training,ops-training" in writes[1].args


def test_turning_internal_is_drift_fixed_in_place() -> None:
    cust = TenantSpec("t", ("root",), (GpuQuota("training", "H100-SXM", 8),))
    live = acc.desired(cust, PARTITIONS, SHARES).qos["t-training"]
    want = acc.desired(
        TenantSpec("t", ("root",), cust.quotas, internal=True), PARTITIONS, SHARES
    ).qos["t-training"]
    assert live.limits() != want.limits()
    args = acc.slurm_qos.modify_args(live, want)
    assert "PreemptMode=requeue" in args
    assert "Description=computectl: internal tenants in pool training" in args


def test_a_transaction_holds_at_most_a_chunk_of_tenants() -> None:
    n = 2 * tb.CHUNK + 50
    writes = tb.writes({f"t{i:04d}": created(f"t{i:04d}") for i in range(n)}, "c")
    assert [(w.args[:2], len(w.changes)) for w in writes] == [
        (("add", "qos"), tb.CHUNK),
        (("add", "qos"), tb.CHUNK),
        (("add", "qos"), 50),
        (("load",), 2 * tb.CHUNK),
        (("load",), 2 * tb.CHUNK),
        (("load",), 100),
    ]
    assert writes[2].args[2].split(",") == [f"t{i:04d}-training" for i in range(2 * tb.CHUNK, n)]
