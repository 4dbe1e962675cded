"""The pair test on the simulated datacenter: the whole service, judged on simulated faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.errors import InvalidInput, NotFoundError
from compute.runtime import Runtime
from compute.services.fabric import PAIR_CHECK, PairTestOptions
from compute.services.rma import rma_report
from compute.testing import make_runtime
from health.policy import Lifecycle, drain_budget
from health.result import Status

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(
        tmp_path,
        config={"remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"}},
    )
    runtime.sweep()
    yield runtime
    runtime.close()


def _pool(rt: Runtime) -> tuple[str, list[str]]:
    node = rt.store.nodes(state=Lifecycle.IN_SERVICE)[0]
    names = [n.name for n in rt.store.nodes(pool=node.pool, state=Lifecycle.IN_SERVICE)]
    return node.pool, names[:8]


def test_healthy_pool_passes(rt: Runtime) -> None:
    pool, names = _pool(rt)
    run = rt.fabric.pair_test(pool, PairTestOptions(), actor="test", names=names)
    assert run.report.healthy and run.rounds == 2 and len(run.report.pairs) == len(names)
    assert run.report.reference_gbps == pytest.approx(370.0, rel=0.03)
    statuses = {r.node: r.status for n in names for r in rt.store.latest_results(n)
                if r.check == PAIR_CHECK}  # fmt: skip
    assert statuses == dict.fromkeys(names, Status.PASS)


def test_a_node_with_a_rail_down_is_found_and_drained(rt: Runtime) -> None:
    pool, names = _pool(rt)
    bad = names[3]
    rt.datacenter.inject(bad, "ib_port_down", gpu=5)  # type: ignore[union-attr]
    run = rt.fabric.pair_test(pool, PairTestOptions(), actor="ops", names=names, drain=True)
    assert list(run.report.suspect_nodes) == [bad]
    assert run.report.suspect_links == ()
    assert run.drained == (bad,)
    node = rt.store.node(bad)
    assert node is not None and node.state in (Lifecycle.DRAINING, Lifecycle.DRAINED)
    assert "NCCL pair test: slow with every partner" in node.drain_reason
    # Its RMA evidence carries the pair figures; its burn-in section is not confused by them.
    report = rma_report(rt.store, node)
    assert any(r.check == PAIR_CHECK and r.status is Status.FAIL for r in report.failures)
    assert all(r.check != PAIR_CHECK for r in report.burn_in)


def test_drain_stays_within_the_pool_budget(rt: Runtime) -> None:
    pool, _ = _pool(rt)
    names = [n.name for n in rt.store.nodes(pool=pool)]
    budget = drain_budget(len(names), rt.policy)
    bad = names[1 : 4 * budget + 5 : 4]  # more than the budget, well apart on the ring
    for name in bad:
        rt.datacenter.inject(name, "ib_port_down", gpu=1)  # type: ignore[union-attr]
    run = rt.fabric.pair_test(pool, PairTestOptions(), actor="ops", names=names, drain=True)
    assert set(run.report.suspect_nodes) == set(bad)
    assert run.drained == ()
    assert "exceed the drain budget" in run.drain_refused
    assert all(n.state is Lifecycle.IN_SERVICE for n in rt.store.nodes(pool=pool))


def test_refusals(rt: Runtime) -> None:
    pool, names = _pool(rt)
    with pytest.raises(NotFoundError, match="unknown pool"):
        rt.fabric.pair_test("nope", PairTestOptions(), actor="t")
    with pytest.raises(InvalidInput, match="at least two nodes"):
        rt.fabric.pair_test(pool, PairTestOptions(), actor="t", names=names[:1])
    with pytest.raises(NotFoundError, match="unknown node"):
        rt.fabric.pair_test(pool, PairTestOptions(), actor="t", names=[names[0], "gpu-999"])


def test_a_healthy_node_between_two_bad_ones_is_cleared_by_re_pairing(rt: Runtime) -> None:
    """On the ring the healthy node between two nodes with a rail down is slow with both
    partners; re-paired with a node that passed everywhere it is fast, so only the two bad
    nodes stay suspects, and --drain drains only them."""
    pool, names = _pool(rt)
    bad = [names[2], names[4]]
    for name in bad:
        rt.datacenter.inject(name, "ib_port_down", gpu=3)  # type: ignore[union-attr]
    ring = rt.fabric.pair_test(pool, PairTestOptions(recheck=False), actor="ops", names=names[:8])
    assert set(ring.report.suspect_nodes) == {names[2], names[3], names[4]}
    run = rt.fabric.pair_test(pool, PairTestOptions(), actor="ops", names=names[:8], drain=True)
    assert set(run.report.suspect_nodes) == set(bad)
    outcomes = {c.node: c.outcome.value for c in run.rechecks}
    assert outcomes == {names[2]: "confirmed", names[3]: "cleared", names[4]: "confirmed"}
    assert all(c.partner not in (*bad, names[3]) for c in run.rechecks)
    assert run.report.suspect_links == ()
    assert sorted(run.drained) == sorted(bad)
    healthy = rt.store.node(names[3])
    assert healthy is not None and healthy.state is Lifecycle.IN_SERVICE
    latest = {r.check: r for r in rt.store.latest_results(names[3])}[PAIR_CHECK]
    assert latest.status is Status.WARN and "cleared by re-pairing" in latest.evidence
