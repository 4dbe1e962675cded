"""Tranche acceptance on the simulated datacenter with injected faults: 16 nodes, two bad
nodes (a slow GEMM, a GPU with one flipped output bit: only burn-in sees either) and one
slow link between two healthy nodes; the report names exactly those."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.errors import InvalidInput, NotFoundError, RefusedError
from compute.runtime import Runtime
from compute.services import acceptance
from compute.services.acceptance_html import render
from compute.testing import make_runtime
from health.policy import Lifecycle

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    # New capacity carries no work yet (a node with jobs is drained first and waits).
    runtime = make_runtime(
        tmp_path,
        target_utilisation=0.0,
        config={"remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"}},
    )
    runtime.sweep()
    yield runtime
    runtime.close()


def _tranche(rt: Runtime) -> tuple[str, list[str]]:
    pool = rt.store.nodes(state=Lifecycle.IN_SERVICE)[0].pool
    names = sorted(n.name for n in rt.store.nodes(pool=pool))[:16]
    return pool, names


def _run_to_verdict(rt: Runtime, name: str, sweeps: int = 12) -> dict[str, object]:
    for _ in range(sweeps):
        report = rt.sweep()
        assert not [e for e in report.errors if "acceptance" in e]
        if acceptance.get(rt.store, name).state in (acceptance.LIVE, acceptance.FAILED):
            break
    return acceptance.report(rt.store, name)


@pytest.mark.parametrize(("threshold", "state"), [(0.95, "failed"), (0.85, "live")])
def test_the_report_names_exactly_the_injected_nodes_and_link(
    rt: Runtime, threshold: float, state: str
) -> None:
    assert rt.datacenter is not None
    _, names = _tranche(rt)
    slow_gemm, bitflip = names[3], names[9]
    rt.datacenter.inject(slow_gemm, "slow_gemm", gpu=2)
    rt.datacenter.inject(bitflip, "sdc_bitflip", gpu=5)
    # Neighbours on the pair test's ring (the nodes that pass burn-in, in order).
    link = (names[12], names[13])
    rt.datacenter.inject_link(*link)
    assert names == [f"gpu-{i:03d}" for i in range(1, 17)]
    hostlist = "gpu-[001-016]"
    tranche = acceptance.create(
        rt.store, rt.clock, "tranche-1", "operator:test", nodes=[hostlist], threshold=threshold
    )
    assert tranche.nodes == tuple(names)
    started = acceptance.run(rt.store, rt.clock, "tranche-1")
    assert (started.state, started.phase) == ("running", "burn_in")
    report = _run_to_verdict(rt, "tranche-1")
    assert report["state"] == state and report["live"] is (state == "live")
    assert report["accepted_out_of_service"] == []
    assert acceptance.get(rt.store, "tranche-1").state == state
    assert {x["node"] for x in report["rma"]} == {slow_gemm, bitflip}  # type: ignore[union-attr]
    assert report["suspect_links"] == [sorted(link)]
    assert report["suspect_nodes"] == {}
    assert (report["accepted"], report["total"], report["share"]) == (14, 16, 0.875)
    by_node = {n["node"]: n for n in report["nodes"]}  # type: ignore[union-attr]
    assert {n for n, r in by_node.items() if r["verdict"] == "failed"} == {slow_gemm, bitflip}
    assert {e["check"] for e in by_node[bitflip]["evidence"]} >= {"sdc"}
    # SDC is fatal: repair after one burn-in; the slow GEMM was retried first.
    assert "fatal check (sdc), no retry" in by_node[bitflip]["note"]
    assert "burn-in failed 2x" in by_node[slow_gemm]["note"]
    gemm = [e for e in by_node[slow_gemm]["evidence"] if e["check"].startswith("gemm")]
    assert gemm and "floor" in gemm[0]["evidence"]  # the figure against its floor
    # The rest went into service, the bad ones to repair, through the policy's own path.
    for name in names:
        node = rt.store.node(name)
        assert node is not None
        want = Lifecycle.REPAIR if name in (slow_gemm, bitflip) else Lifecycle.IN_SERVICE
        assert node.state is want, name
    page = render(report)
    assert slow_gemm in page and bitflip in page and " - ".join(sorted(link)) in page


def test_a_pool_tranche_and_refusals(rt: Runtime) -> None:
    pool, names = _tranche(rt)
    whole = acceptance.create(rt.store, rt.clock, "all", "op", pool=pool)
    assert len(whole.nodes) == len(rt.store.nodes(pool=pool))
    with pytest.raises(RefusedError, match="exists"):
        acceptance.create(rt.store, rt.clock, "all", "op", pool=pool)
    with pytest.raises(NotFoundError, match="unknown nodes"):
        acceptance.create(rt.store, rt.clock, "x", "op", nodes=["nope-[1-3]"])
    with pytest.raises(InvalidInput):
        acceptance.create(rt.store, rt.clock, "x", "op", nodes=names, threshold=1.5)
    with pytest.raises(InvalidInput):
        acceptance.create(rt.store, rt.clock, "<b>", "op", nodes=names)
    with pytest.raises(RefusedError, match="not run yet"):
        acceptance.report(rt.store, "all")
    acceptance.run(rt.store, rt.clock, "all")
    with pytest.raises(RefusedError, match="running already"):
        acceptance.run(rt.store, rt.clock, "all")
    # While it runs, the report says what is known so far and nothing is live.
    partial = acceptance.report(rt.store, "all")
    assert partial["final"] is False and partial["live"] is False


def test_nodes_with_work_are_drained_first_and_burnt_in_when_it_ends(tmp_path: Path) -> None:
    """A node running tenants' jobs is drained (as the tranche's own, not a fault: job
    impact and lemons do not count it) and burnt in once its work has finished."""
    rt = make_runtime(
        tmp_path,
        fault_rate_per_node_hour=0.0,
        racks=1,
        nodes_per_rack=4,
        config={"remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"}},
    )
    try:
        rt.sweep()
        assert rt.datacenter is not None
        names = sorted(n.name for n in rt.store.nodes())
        busy = [n.name for n in rt.store.nodes() if n.jobs_running]
        assert busy
        acceptance.create(rt.store, rt.clock, "t", "op", nodes=names, threshold=1.0)
        acceptance.run(rt.store, rt.clock, "t")
        rt.sweep()
        for name in busy:
            node = rt.store.node(name)
            assert node is not None and node.state is Lifecycle.DRAINING
            (drain,) = rt.store.events(node=name, kinds=["drain"], limit=1)
            assert (drain.actor, drain.detail["cause"]) == ("acceptance:t", "operator")
        for _ in range(30):
            if acceptance.get(rt.store, "t").state in (acceptance.LIVE, acceptance.FAILED):
                break
            rt.datacenter.advance(1800)
            rt.sweep()
        report = acceptance.report(rt.store, "t")
        assert (report["state"], report["accepted"]) == ("live", 4), report
        assert all(n.state is Lifecycle.IN_SERVICE for n in rt.store.nodes())
    finally:
        rt.close()
