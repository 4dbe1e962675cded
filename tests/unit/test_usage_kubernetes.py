"""Kubernetes usage records from pods: the effective GPU request, the lifetime from
startTime to the last container's finishedAt (or `until`), the node's pool and model;
hostile pod objects are refused one by one (Malformed), never with another error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.kubernetes import usage
from scheduler.usage import UNKNOWN_MODEL, UsageRecord

UNTIL = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NODES = {"kwok-gpu-001": ("training", "H100-SXM"), "kwok-gpu-007": ("inference", "")}
VALUES = {"training": "training", "inference": "inference"}
GPU = "nvidia.com/gpu"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def c(requests: Any = None, limits: Any = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if requests is not None:
        res["requests"] = {GPU: requests}
    if limits is not None:
        res["limits"] = {GPU: limits}
    return {"name": "c", "resources": res, **extra}


def pod(
    containers: list[dict[str, Any]],
    inits: list[dict[str, Any]] | None = None,
    node: str = "kwok-gpu-001",
    phase: str = "Running",
    finished: list[Any] | None = None,
    start: str | None = "2026-03-02T08:00:00Z",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if start is not None:
        status["startTime"] = start
    if finished is not None:
        status["containerStatuses"] = [
            {"state": {"terminated": {"finishedAt": f, "exitCode": 0}}} for f in finished
        ]
    spec: dict[str, Any] = {"containers": containers, "nodeName": node}
    spec["nodeSelector"] = {"computectl.io/pool": "training"}
    if inits is not None:
        spec["initContainers"] = inits
    return {"metadata": {"name": "p", "namespace": "tenant-t"}, "spec": spec, "status": status}


def test_effective_request_follows_kubernetes_rule() -> None:
    assert usage.effective_gpus(pod([c("2"), c(limits="3")]), GPU) == 5
    # A plain init container runs alone before the others: the larger counts.
    assert usage.effective_gpus(pod([c("2")], [c("4")]), GPU) == 4
    assert usage.effective_gpus(pod([c("2")], [c("1")]), GPU) == 2
    # A sidecar (restartPolicy Always) runs beside the containers: it adds.
    assert usage.effective_gpus(pod([c("2")], [c("1", restartPolicy="Always"), c("2")]), GPU) == 3
    assert usage.effective_gpus(pod([c(3)]), GPU) == 3
    assert usage.effective_gpus(pod([{"name": "cpu"}]), GPU) == 0


def test_a_running_pod_counts_until_now_an_ended_one_until_its_last_container() -> None:
    running = usage.pod_record(pod([c("8")]), "t", NODES, VALUES, GPU, UNTIL)
    assert running == UsageRecord("t", "training", "H100-SXM", at(2, 8), UNTIL, 8)
    ended = pod(
        [c("2"), c("2")],
        node="kwok-gpu-007",
        phase="Succeeded",
        finished=["2026-03-02T09:00:00Z", "2026-03-02T10:00:00+00:00"],
    )
    rec = usage.pod_record(ended, "t", NODES, VALUES, GPU, UNTIL)
    assert rec == UsageRecord("t", "inference", UNKNOWN_MODEL, at(2, 8), at(2, 10), 4)


def test_a_deleted_node_leaves_the_pinned_pool_and_an_unknown_model() -> None:
    rec = usage.pod_record(pod([c("1")], node="gone"), "t", NODES, VALUES, GPU, UNTIL)
    assert rec is not None and (rec.pool, rec.gpu_model) == ("training", UNKNOWN_MODEL)
    assert usage.pod_record(pod([c("1")], node="gone"), "t", NODES, {}, GPU, UNTIL) is None


def test_pods_that_hold_nothing_have_no_record() -> None:
    for p in (pod([c("0")]), pod([{"name": "cpu"}]), pod([c("1")], start=None)):
        assert usage.pod_record(p, "t", NODES, VALUES, GPU, UNTIL) is None


@pytest.mark.parametrize(
    "bad",
    [
        pod([c("1.5")]),
        pod([c("-1")]),
        pod([c("1k")]),
        pod([c(True)]),
        pod([c("99999999")]),
        pod([c("1")], start="yesterday"),
        pod([c("1")], start="2026-03-02T08:00:00"),
        pod([c("1")], phase="Failed"),
        pod([c("1")], phase="Succeeded", finished=["2026-03-01T00:00:00Z"]),
        pod(["not a container"]),  # type: ignore[list-item]
        {"spec": [], "status": {}},
    ],
)
def test_malformed_pods_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(usage.Malformed):
        usage.pod_record(bad, "t", NODES, VALUES, GPU, UNTIL)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
QUANTITY = JSON | st.sampled_from(["1", "8", "0", "1e3", "NaN", "Infinity", "-2", "٣"])
TIME = JSON | st.sampled_from(["2026-03-02T08:00:00Z", "2026-03-03T00:00:00+01:00", "x"])


@st.composite
def hostile_pods(draw: st.DrawFn) -> dict[str, Any]:
    def container() -> dict[str, Any]:
        res = {
            k: {GPU: draw(QUANTITY)} for k in draw(st.sets(st.sampled_from(["requests", "limits"])))
        }
        return {"resources": draw(st.one_of(st.just(res), JSON)), "restartPolicy": draw(JSON)}

    p = pod(
        [container() for _ in range(draw(st.integers(0, 2)))],
        [container() for _ in range(draw(st.integers(0, 2)))],
        node=draw(st.sampled_from([*NODES, "gone"])),
        phase=draw(st.sampled_from(["Running", "Succeeded", "Failed", "Pending"])),
        finished=draw(st.none() | st.lists(TIME, max_size=2)),
    )
    p["status"]["startTime"] = draw(TIME)
    if draw(st.booleans()):
        p[draw(st.sampled_from(["spec", "status"]))] = draw(JSON)
    return p


@given(hostile_pods())
def test_hostile_pods_give_a_sound_record_or_malformed(p: dict[str, Any]) -> None:
    try:
        rec = usage.pod_record(p, "t", NODES, VALUES, GPU, UNTIL)
    except usage.Malformed:
        return
    if rec is not None:
        assert 0 < rec.gpus <= 1_000_000 and rec.start <= rec.end
        assert rec.start.tzinfo is not None and rec.pool in VALUES
