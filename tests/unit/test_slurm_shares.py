"""A tenant's QOS bounds every resource it can hold in a pool: the per-GPU share of the
pool's nodes (from sinfo --json), sacctmgr's memory values, and the QOS it makes.

The samples are Slurm 22.05.8's output on the testenv/slurm cluster (8 nodes of 64 CPUs,
512000 MB and 8 H100; CR_Core_Memory).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import InvalidRequest
from scheduler.slurm import fields
from scheduler.slurm import qos as slurm_qos
from scheduler.slurm.commands import _rows
from scheduler.slurm.shares import NodeShape, PoolShare, node_shapes, pool_share

# sinfo --json, one node trimmed to the fields read (and one it ignores).
NODE: dict[str, Any] = {
    "name": "gpu-001", "cpus": 64, "real_memory": 512000, "gres": "gpu:h100:8",
    "partitions": ["training"], "tres": "cpu=64,mem=500G,billing=64,gres/gpu=8,gres/gpu:h100=8",
}  # fmt: skip


def sinfo(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": list(nodes)}


def test_the_share_of_testenvs_nodes_is_8_cpus_and_64000_mb_per_gpu() -> None:
    nodes = [{**NODE, "name": f"gpu-00{i}"} for i in range(1, 7)]
    other = {**NODE, "name": "gpu-007", "partitions": ["inference"], "cpus": 8}
    shapes = node_shapes(sinfo(*nodes, other), "training")
    assert [s.name for s in shapes] == [f"gpu-00{i}" for i in range(1, 7)]
    share = pool_share(shapes, "training")
    assert share == PoolShare("training", Fraction(8), Fraction(64000))
    assert share.limits(8) == {"cpu": "64", "mem": "512000"}  # 8 GPUs: one node's worth
    assert share.limits(1) == {"cpu": "8", "mem": "64000"}
    assert share.note == ""


def test_nodes_that_differ_give_the_smallest_share_of_each_and_say_so() -> None:
    shapes = [
        NodeShape("a", cpus=64, memory_mb=512000, gpus=8),  # 8 CPUs, 64000 MB per GPU
        NodeShape("b", cpus=96, memory_mb=256000, gpus=8),  # 12 CPUs, 32000 MB per GPU
        NodeShape("c", cpus=52, memory_mb=10**6, gpus=4),  # 13 CPUs, 250000 MB per GPU
        NodeShape("cpu-only", cpus=2, memory_mb=1000, gpus=0),  # no GPU: no share, left out
    ]
    share = pool_share(shapes, "training")
    assert (share.cpus_per_gpu, share.memory_mb_per_gpu) == (Fraction(8), Fraction(32000))
    assert not share.uniform
    assert share.limits(3) == {"cpu": "24", "mem": "96000"}
    assert share.note == (
        "cpu, mem: the smallest per-GPU share of partition training's nodes, which differ "
        "(8 CPUs, 32000M per GPU)"
    )


def test_a_share_that_is_no_whole_number_is_floored_never_rounded_up() -> None:
    share = pool_share([NodeShape("a", cpus=52, memory_mb=100003, gpus=8)], "p")
    assert share.limits(1) == {"cpu": "6", "mem": "12500"}  # 6.5 CPUs, 12500.375 MB
    assert share.limits(3) == {"cpu": "19", "mem": "37501"}  # 19.5, 37501.125


@pytest.mark.parametrize(
    ("nodes", "match"),
    [
        ([], "has no node with GPUs"),
        ([NodeShape("c", 64, 512000, 0)], "has no node with GPUs"),
        ([NodeShape("a", 0, 512000, 8)], r"node\(s\) 'a' of partition p report no CPUs"),
    ],
)
def test_a_partition_whose_share_cannot_be_sized_is_refused(
    nodes: list[NodeShape], match: str
) -> None:
    with pytest.raises(InvalidRequest, match=match):
        pool_share(nodes, "p")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_NODE = st.fixed_dictionaries(
    {},
    optional={
        "name": _JSON | st.text(max_size=10),
        "cpus": _JSON | st.integers(-1, 512),
        "real_memory": _JSON | st.integers(-1, 4 * 10**6),
        "gres": _JSON | st.sampled_from(["gpu:h100:8", "gpu:8(S:0-1)", "N/A", "gpu:h100:4,nic:2"]),
        "partitions": _JSON | st.just(["training"]),
    },
)


@given(st.dictionaries(st.just("nodes"), st.lists(_NODE | _JSON, max_size=5)))
def test_sinfo_output_of_any_shape_sizes_a_share_or_is_refused_in_one_line(
    data: dict[str, Any],
) -> None:
    shapes = node_shapes(data, "training")
    if not any(n.gpus for n in shapes) or any(
        n.gpus and (n.cpus <= 0 or n.memory_mb <= 0) for n in shapes
    ):
        with pytest.raises(InvalidRequest, match=r"^[^\n]*$"):
            pool_share(shapes, "training")
        return
    share = pool_share(shapes, "training")
    for gpus in (0, 1, 7, 64):
        limits = share.limits(gpus)
        # never more than the GPUs' share of any node with GPUs
        for n in shapes:
            if n.gpus:
                assert int(limits["cpu"]) <= gpus * n.cpus / n.gpus
                assert int(limits["mem"]) <= gpus * n.memory_mb / n.gpus


# -- sacctmgr's memory values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mb"),
    # what sacctmgr 22.05.8 printed for GrpTRES=mem=<mb>
    [("1000M", "1000"), ("1G", "1024"), ("24000M", "24000"), ("62.50G", "64000"),
     ("500G", "512000"), ("1T", "1048576"), ("1500G", "1536000"), ("100M", "100")],
)  # fmt: skip
def test_memory_reads_back_in_mb(text: str, mb: str) -> None:
    assert fields.memory_mb(text) == mb


def slurm_exact(mb: int) -> str:
    """sacctmgr's printing (convert_num_unit, CONVERT_NUM_UNIT_EXACT): divide by 1024 while
    the value stays exact to two decimals, then print with two decimals unless whole."""
    units, value = "MGTP", Decimal(mb)
    i = 0
    while value >= 1024 and i < len(units) - 1 and (value * 100) % 1024 == 0:
        value /= 1024
        i += 1
    text = f"{value:.2f}" if value != value.to_integral_value() else f"{int(value)}"
    return f"{text}{units[i]}"


@given(st.integers(min_value=1, max_value=2**40))
def test_memory_round_trips_through_sacctmgrs_units(mb: int) -> None:
    assert fields.memory_mb(slurm_exact(mb)) == str(mb)


@given(st.text(max_size=30))
def test_memory_reader_takes_any_text(text: str) -> None:
    out = fields.memory_mb(text)
    assert out == text or out.isdigit()


# -- the QOS ---------------------------------------------------------------------------------------

SHARE = PoolShare("training", Fraction(8), Fraction(64000))


def test_the_pool_qos_bounds_gpus_cpus_and_memory_and_asks_every_job_for_a_gpu() -> None:
    q = slurm_qos.pool_qos("hx-part", "training", 8, "h100", SHARE, None)
    assert q.line() == (
        "GrpTRES=cpu=64,gres/gpu=8,gres/gpu:h100=8,mem=512000 MinTRESPerJob=gres/gpu=1"
    )
    assert slurm_qos.add_args(q) == (
        "add", "qos", "hx-part-training", "Description=computectl: tenants in pool training",
        "GrpTRES=cpu=64,gres/gpu=8,gres/gpu:h100=8,mem=512000", "MinTRESPerJob=gres/gpu=1",
    )  # fmt: skip
    # as sacctmgr shows it, it reads back as the same limits: no drift
    row = _rows(
        "hx-part-training|cpu=64,gres/gpu:h100=8,gres/gpu=8,mem=500G|gres/gpu=1|||cluster|"
        "computectl: tenants in pool training\n",
        len(slurm_qos.QOS_FIELDS),
    )[0]
    assert slurm_qos.read_qos(row) == q


def test_a_qos_made_before_the_cpu_and_memory_bounds_converges_in_one_modify() -> None:
    old = slurm_qos.read_qos(
        ["hx-part-training", "gres/gpu:h100=8,gres/gpu=8", "", "", "", "", "computectl: tenant x"]
    )
    new = slurm_qos.pool_qos("hx-part", "training", 8, "h100", SHARE, None)
    assert old.limits() != new.limits()
    assert slurm_qos.modify_args(old, new)[-3:] == (
        "MaxWall=-1",
        "GrpTRES=cpu=64,gres/gpu=8,gres/gpu:h100=8,mem=512000",
        "MinTRESPerJob=gres/gpu=1",
    )


def test_the_plan_line_says_when_the_share_is_the_smallest_of_nodes_that_differ() -> None:
    share = PoolShare("training", Fraction(8), Fraction(32000), uniform=False)
    q = slurm_qos.pool_qos("hx-part", "training", 2, "h100", share, 60)
    assert q.line().endswith(
        "MaxWall=01:00:00 (cpu, mem: the smallest per-GPU share of partition training's "
        "nodes, which differ (8 CPUs, 32000M per GPU))"
    )
    # the note is no limit: a live QOS without it is no drift
    assert slurm_qos.read_qos(
        ["hx-part-training", "cpu=16,gres/gpu=2,gres/gpu:h100=2,mem=64000", "gres/gpu=1",
         "01:00:00", "", "cluster", "computectl: tenants in pool training"]
    ) == q  # fmt: skip
