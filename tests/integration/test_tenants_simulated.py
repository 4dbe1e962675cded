"""Tenants end to end on the simulated cluster: one spec, plan/apply, quota, suspend, delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.errors import InvalidInput, NotFoundError, RefusedError
from compute.runtime import Runtime
from compute.tenants.spec import load_tenant, parse_tenant
from compute.testing import make_runtime
from scheduler.tenants import ChangeKind

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tenant-borealis-ai.toml"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path, target_utilisation=0.0)
    runtime.sweep()
    runtime.sweep()
    yield runtime
    runtime.close()


def spec(rt: Runtime, gpus: int = 16, **extra: object):  # type: ignore[no-untyped-def]
    return parse_tenant(
        {
            "name": "borealis-ai",
            "users": ["alice"],
            "quotas": [{"pool": "training", "gpus": gpus}],
            **extra,
        },
        rt.settings.effective_pools,
    )


def test_plan_apply_and_a_second_apply_changes_nothing(rt: Runtime) -> None:
    s = load_tenant(EXAMPLE, rt.settings.effective_pools)
    plan = rt.tenants.plan(s)
    assert {c.target for _, c in plan.changes} >= {
        "account borealis-ai",
        "quota borealis-ai/training",
    }
    assert all(c.kind is ChangeKind.CREATE for _, c in plan.changes)
    assert rt.tenants.apply(s, actor="operator:test").changes == plan.changes
    assert rt.tenants.plan(s).empty
    assert rt.tenants.apply(s, actor="operator:test").empty
    changed = rt.tenants.plan(spec(rt, gpus=24))
    kinds = {(c.kind, c.target) for _, c in changed.changes}
    assert (ChangeKind.UPDATE, "quota borealis-ai/training") in kinds
    assert (ChangeKind.DELETE, "quota borealis-ai/inference") in kinds


def test_quota_holds_back_work_beyond_it(rt: Runtime) -> None:
    rt.tenants.apply(spec(rt, gpus=16), actor="operator:test")
    dc = rt.datacenter
    assert dc is not None
    with dc.cluster_access() as c:
        fits = c.submit("borealis-ai", "training", 8, 2, hours=2)
        too_many = c.submit("borealis-ai", "training", 8, 1, hours=2)
        assert fits.start is not None and too_many.start is None
    rt.sweep()
    held = sum(a.gpus for a in rt.store.allocations() if a.tenant == "borealis-ai")
    assert held == 16
    jobs = rt.tenants.jobs("borealis-ai")
    assert sorted(j.state for j in jobs) == ["pending", "running"]


def test_suspend_blocks_new_work_running_work_continues(rt: Runtime) -> None:
    rt.tenants.apply(spec(rt), actor="operator:test")
    dc = rt.datacenter
    assert dc is not None
    with dc.cluster_access() as c:
        running = c.submit("borealis-ai", "training", 8, 1, hours=5)
    rt.tenants.suspend("borealis-ai", actor="operator:test")
    with dc.cluster_access() as c:
        blocked = c.submit("borealis-ai", "training", 8, 1, hours=1)
        assert blocked.start is None and c.jobs[running.id].start is not None
    # apply does not lift a suspension; resume does
    assert rt.tenants.apply(spec(rt), actor="operator:test").empty
    assert rt.store.tenant("borealis-ai").state == "suspended"  # type: ignore[union-attr]
    rt.tenants.resume("borealis-ai", actor="operator:test")
    dc.advance(60)
    with dc.cluster_access() as c:
        assert c.jobs[blocked.id].start is not None


def test_delete_refuses_with_jobs_force_cancels_and_the_audit_log_has_it_all(
    rt: Runtime,
) -> None:
    rt.tenants.apply(spec(rt), actor="operator:test")
    with rt.datacenter.cluster_access() as c:  # type: ignore[union-attr]
        c.submit("borealis-ai", "training", 8, 1, hours=5)
    with pytest.raises(RefusedError, match="1 running and 0 pending"):
        rt.tenants.delete("borealis-ai", actor="operator:test")
    assert rt.store.tenant("borealis-ai") is not None
    rt.tenants.delete("borealis-ai", actor="operator:test", force=True)
    assert rt.store.tenant("borealis-ai") is None
    assert rt.tenants.jobs("borealis-ai") == []
    with pytest.raises(NotFoundError):
        rt.tenants.delete("borealis-ai", actor="operator:test")
    actions = [a.action for a in rt.store.audit(target="borealis-ai", limit=20)]
    assert actions == ["tenant.delete", "tenant.cancel_jobs", "tenant.apply"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"name": "ok-name", "quotas": [{"pool": "nope", "gpus": 1}]}, "unknown pool 'nope'"),
        (
            {"name": "ok-name", "quotas": [{"pool": "training", "gpus": 1, "gpu_model": "B200"}]},
            "has H100-SXM GPUs, not B200",
        ),
        ({"name": "ok-name", "quotas": [{"pool": "training", "gpus": -1}]}, "quotas.0.gpus"),
        ({"name": "ok-name", "colour": "red"}, "unknown field"),
        ({"name": "ok-name", "users": ["Alice Smith"]}, "not valid login names"),
    ],
)
def test_bad_specs_are_one_clear_error(rt: Runtime, raw: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_tenant(raw, rt.settings.effective_pools)
