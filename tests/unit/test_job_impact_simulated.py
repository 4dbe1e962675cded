"""Which fault hit which job on the simulated datacenter: jobs on a node computectl drains
for a fault are recorded with the GPU-hours they lost; jobs a node's crash ended are linked
to its finding; the mark makes a second look record nothing; an operator's drain is no
fault; the month's figure per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compute.errors import InvalidInput, NotFoundError
from compute.runtime import Runtime
from compute.services import job_impact
from compute.store import impact as kept
from compute.testing import EPOCH, make_runtime

DRAINED, CRASHED, OPERATOR = "gpu-001", "gpu-002", "gpu-003"


def build(tmp: Path) -> Runtime:
    rt = make_runtime(tmp, persist=False, racks=1, nodes_per_rack=4)
    rt.sweep()
    return rt


def running(rt: Runtime, node: str) -> dict[str, tuple[str, int, datetime]]:
    assert rt.datacenter is not None
    with rt.datacenter.cluster_access() as c:
        return {
            str(j.id): (j.tenant, j.gpus_per_node * len(j.nodes),
                        datetime.fromtimestamp(j.start or 0, UTC))
            for j in c.running_on(node)
        }  # fmt: skip


def test_drains_and_crashes_hit_the_jobs_on_the_node_once(tmp_path: Path) -> None:
    rt = build(tmp_path)
    assert rt.datacenter is not None
    on_drained, on_crashed = running(rt, DRAINED), running(rt, CRASHED)
    on_operator = running(rt, OPERATOR)
    assert on_drained and on_crashed and on_operator
    rt.datacenter.inject(DRAINED, "nvlink_down")  # jobs keep running; computectl drains
    rt.datacenter.inject(CRASHED, "xid79")  # the node's jobs crash with it
    rt.nodes.drain(OPERATOR, "fan noise", actor="alice")
    for _ in range(3):
        rt.datacenter.advance(60)
        rt.sweep()
    assert job_impact.after_sweep(rt) == []  # once more: nothing new, no error

    drain = next(e for e in rt.store.events(node=DRAINED, kinds=["drain"]))
    hits = {h.work: h for h in kept.hits(rt.store)}
    drained = {w for w, h in hits.items() if h.node == DRAINED}
    crashed = {w for w, h in hits.items() if h.node == CRASHED}
    assert drained == set(on_drained) and crashed == set(on_crashed)
    assert not {w for w, h in hits.items() if h.node == OPERATOR}
    for work, (tenant, gpus, start) in on_drained.items():
        h = hits[work]
        assert (h.tenant, h.gpus, h.cause, h.event_id) == (tenant, gpus, "drain", drain.id)
        expected = gpus * (drain.at - start).total_seconds() / 3600
        assert abs(h.gpu_hours - expected) < 1e-5
    for work, (tenant, gpus, start) in on_crashed.items():
        h = hits[work]
        assert (h.tenant, h.cause, h.state, h.check) == (tenant, "node_fail", "node_fail", "xid")
        assert h.end is not None
        assert abs(h.gpu_hours - gpus * (h.end - start).total_seconds() / 3600) < 1e-5
    assert len(hits) == len(kept.hits(rt.store))  # one record per job


def test_a_tenants_month(tmp_path: Path) -> None:
    rt = build(tmp_path)
    with rt.store.transaction() as tx:
        tx.put_tenant("acme", {"name": "acme"}, "active", EPOCH)
    first = kept.mark(rt.store)
    assert first is not None
    hit = kept.JobHit(
        "training", "42", "acme", "gpu-001", kept.DRAIN, EPOCH, 8, EPOCH - timedelta(hours=2),
        None, "running", 16.0, "xid", "computectl: xid: XID 79", 1,
    )  # fmt: skip
    later = kept.Mark(first.last_event_id, first.failed_until + timedelta(seconds=1))
    assert kept.record(rt.store, first, later, [hit])
    assert not kept.record(rt.store, first, later, [hit])  # the mark moved: nothing added
    view = job_impact.impact_view(job_impact.tenant_impact(rt.store, "acme", "2026-01", EPOCH))
    assert view["month"] == "2026-01" and view["gpu_hours_lost"] == 16.0
    assert job_impact.tenant_impact(rt.store, "acme", "2026-02", EPOCH).hits == []
    with pytest.raises(NotFoundError):
        job_impact.tenant_impact(rt.store, "nobody", None, EPOCH)
    with pytest.raises(InvalidInput):
        job_impact.tenant_impact(rt.store, "acme", "2026-13", EPOCH)
    assert job_impact.month_bounds("2026-12", EPOCH) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
