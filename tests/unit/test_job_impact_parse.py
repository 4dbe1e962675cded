"""Reading which jobs and pods ran on a node (scheduler/slurm/work.py,
scheduler/kubernetes/work.py): what squeue, sacct and the API server print, and hostile
answers, which are skipped and counted and never stop the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.kubernetes.work import pods_work, tenant_of
from scheduler.slurm.work import WORK_FIELDS, end_state, merge, sacct_work, squeue_work
from scheduler.work import ENDED, FAILED, NODE_FAIL, RUNNING, NodeWork, WorkRead

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)


def line(*fields: str) -> str:
    assert len(fields) == len(WORK_FIELDS)
    return "|".join(fields)


def test_sacct_lines_give_one_entry_per_node() -> None:
    text = "\n".join(
        [
            line("101", "acme", "2026-12-01T10:00:00", "Unknown", "RUNNING",
                 "cpu=8,gres/gpu=8,gres/gpu:h100=8", "gpu-[001-002]"),
            line("101.batch", "acme", "2026-12-01T10:00:00", "Unknown", "RUNNING", "", "gpu-001"),
            line("102", "beta", "2026-12-01T09:00:00", "2026-12-01T11:00:00", "NODE_FAIL",
                 "gres/gpu=4", "gpu-001"),
            line("103", "beta", "2026-12-01T09:00:00", "2026-12-01T09:30:00",
                 "CANCELLED by 0", "gres/gpu=2", "gpu-001"),
            line("104", "beta", "Unknown", "Unknown", "PENDING", "", "None assigned"),
        ]
    )  # fmt: skip
    read = sacct_work(text, UTC)
    assert read.skipped == 0
    by = {(w.id, w.node): w for w in read.work}
    assert set(by) == {("101", "gpu-001"), ("101", "gpu-002"), ("102", "gpu-001"),
                       ("103", "gpu-001")}  # fmt: skip
    assert by[("101", "gpu-001")] == NodeWork("101", "acme", "gpu-001", 8, T0, None, RUNNING)
    assert by[("102", "gpu-001")].state == NODE_FAIL
    assert by[("102", "gpu-001")].end == T0 + timedelta(hours=1)
    assert by[("103", "gpu-001")].state == ENDED
    assert sacct_work(text, UTC, node="gpu-002").work == [by[("101", "gpu-002")]]


def test_a_job_that_ends_before_it_starts_or_garbled_fields_are_skipped() -> None:
    text = "\n".join(
        [
            line("7", "acme", "2026-12-01T10:00:00", "2026-12-01T09:00:00", "FAILED", "", "n1"),
            line("x7", "acme", "2026-12-01T10:00:00", "Unknown", "RUNNING", "", "n1"),
            line("8", "acme", "2026-12-01T10:00:00", "Unknown", "RUNNING", "gres/gpu=x", "n1"),
            line("9", "acme", "yesterday", "Unknown", "RUNNING", "", "n1"),
            line("10", "acme", "2026-12-01T10:00:00", "Unknown", "RUNNING", "", "n[9-1]"),
            "11|acme|too few",
            line("12", "acme", "2026-12-01T10:00:00", "Unknown", "RUNNING", "gres/gpu=1", "n1"),
        ]
    )
    read = sacct_work(text, UTC)
    assert read.skipped == 6 and [w.id for w in read.work] == ["12"]


def test_end_states() -> None:
    assert end_state("RUNNING") == RUNNING and end_state("NODE_FAIL") == NODE_FAIL
    assert end_state("OUT_OF_MEMORY") == FAILED and end_state("CANCELLED by 0") == ENDED


def squeue_job(**over: Any) -> dict[str, Any]:
    job = {
        "job_id": 55, "account": "acme", "job_state": "RUNNING", "partition": "training",
        "nodes": "gpu-001", "tres_per_node": "gres:gpu:h100:4",
        "start_time": int(T0.timestamp()),
    }  # fmt: skip
    return {**job, **over}


def test_squeue_running_jobs_on_the_node_with_their_start() -> None:
    read = squeue_work(
        {"jobs": [squeue_job(), squeue_job(job_id=56, nodes="gpu-002"),
                  squeue_job(job_id=57, start_time={"set": True, "number": int(T0.timestamp())}),
                  squeue_job(job_id=58, job_state="PENDING")]},
        "gpu-001",
    )  # fmt: skip
    assert read.skipped == 0
    assert [(w.id, w.gpus, w.start) for w in read.work] == [("55", 4, T0), ("57", 4, T0)]


def test_squeue_hostile_entries_are_skipped() -> None:
    bad = [
        "a string", None, squeue_job(start_time="soon"), squeue_job(start_time=True),
        squeue_job(start_time=5), squeue_job(job_resources=[1]), squeue_job(account="a|b"),
        squeue_job(start_time={"set": False, "number": 0}),
    ]  # fmt: skip
    read = squeue_work({"jobs": [*bad, squeue_job(job_id=99)]}, "gpu-001")
    assert [w.id for w in read.work] == ["99"] and read.skipped == len(bad)
    assert squeue_work({"jobs": "none"}, "gpu-001") == WorkRead([], 1)


def test_merge_takes_the_ended_job_from_sacct_and_the_running_one_from_squeue() -> None:
    run = NodeWork("1", "a", "n", 4, T0, None, RUNNING)
    ended = NodeWork("1", "a", "n", 4, T0, NOW, NODE_FAIL)
    other = NodeWork("2", "a", "n", 1, T0, None, RUNNING)
    assert merge(WorkRead([run]), WorkRead([ended, other], 2)) == WorkRead([ended, other], 2)
    late = NodeWork("1", "a", "n", 4, T0 + timedelta(seconds=1), None, RUNNING)
    assert merge(WorkRead([run]), WorkRead([late])).work == [run]


def test_gpu_hours_run_from_the_start_to_the_drain_or_the_end() -> None:
    w = NodeWork("1", "a", "n", 8, T0, None, RUNNING)
    assert w.gpu_hours_until(T0 + timedelta(minutes=30)) == 4.0
    assert w.gpu_hours_until(T0 - timedelta(hours=1)) == 0.0
    ended = NodeWork("1", "a", "n", 8, T0, T0 + timedelta(minutes=15), FAILED)
    assert ended.gpu_hours_until(NOW) == 2.0


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_FIELD = st.one_of(
    _TEXT, st.sampled_from(["Unknown", "None", "", "2026-12-01T10:00:00", "RUNNING",
                            "NODE_FAIL", "gres/gpu=4", "gpu-[001-999999999]", "123", "123.0"]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.lists(_FIELD, min_size=1, max_size=9), max_size=8))
def test_hostile_sacct_answers_never_raise(lines: list[list[str]]) -> None:
    text = "\n".join("|".join(fs) for fs in lines)
    read = sacct_work(text, UTC)
    for w in read.work:
        assert w.gpus >= 0 and (w.end is None or w.end >= w.start)
    assert read.skipped <= len(text.split("\n"))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["job_id", "account", "job_state", "nodes", "tres_per_node", "start_time", "gres_detail",
     "job_resources", "tres_alloc_str", "partition"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(jobs=st.lists(st.dictionaries(_KEYS, _JSON, max_size=10) | _JSON, max_size=5))
def test_hostile_squeue_answers_never_raise(jobs: list[Any]) -> None:
    read = squeue_work({"jobs": [squeue_job(), *jobs]}, "gpu-001")
    assert [w.id for w in read.work][:1] == ["55"]


# -- Kubernetes ------------------------------------------------------------------------------


def pod(name: str = "train-0", ns: str = "tenant-acme", phase: str = "Running",
        gpus: Any = "4", node: str | None = "gpu-001", **status: Any) -> dict[str, Any]:  # fmt: skip
    st_: dict[str, Any] = {"phase": phase, "startTime": T0.isoformat(), **status}
    spec: dict[str, Any] = {"containers": [{"resources": {"requests": {"nvidia.com/gpu": gpus}}}]}
    if node is not None:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec, "status": st_}


def finished(at: datetime) -> dict[str, Any]:
    return {"containerStatuses": [{"state": {"terminated": {"finishedAt": at.isoformat()}}}]}


def test_pods_on_a_node_with_their_tenant() -> None:
    pods = [
        pod(),
        pod("eval", ns="kube-system"),
        pod("cpu", gpus="0"),
        pod("pending", node=None),
        pod("done", phase="Failed", **finished(T0 + timedelta(hours=1))),
        pod("long-done", phase="Succeeded", **finished(T0 - timedelta(seconds=1))),
    ]
    read = pods_work(pods, "nvidia.com/gpu", T0, NOW, node="gpu-001")
    got = {w.id: (w.tenant, w.gpus, w.state, w.end) for w in read.work}
    assert got == {
        "tenant-acme/train-0": ("acme", 4, RUNNING, None),
        "kube-system/eval": ("", 4, RUNNING, None),
        "tenant-acme/done": ("acme", 4, FAILED, T0 + timedelta(hours=1)),
    }
    failed = pods_work(pods, "nvidia.com/gpu", T0, NOW, failed_only=True)
    assert [w.id for w in failed.work] == ["tenant-acme/done"]
    assert tenant_of("tenant-") == "" and tenant_of("tenant-x") == "x"


@settings(max_examples=200, deadline=None)
@given(pods=st.lists(_JSON | st.dictionaries(st.sampled_from(["metadata", "spec", "status"]),
                                               _JSON, max_size=3), max_size=5))  # fmt: skip
def test_hostile_pods_never_raise(pods: list[Any]) -> None:
    read = pods_work([pod(), *pods], "nvidia.com/gpu", T0, NOW, node="gpu-001")
    assert read.work[0].id == "tenant-acme/train-0"
