"""Grace Blackwell NVL72 racks on the simulated datacenter: 18 compute trays of 4 GB200 GPUs
in one NVLink domain per rack. A failed NVLink switch tray degrades the whole domain: it
opens one incident and the domain is drained as one unit where the drain budget has room
for it, or held whole by the budget (and said so) where it has not; never node by node,
and never the other rack's domain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.domain import EventKind, Node
from compute.runtime import Runtime
from compute.services import incidents, pools
from compute.services.gate import MODE_TTL_SECONDS
from compute.services.nvlink_domains import domain_of
from compute.testing import make_runtime
from health.policy import Lifecycle
from health.policy.budget import drain_budget

pytestmark = pytest.mark.integration

NVL72 = {
    "racks": 2,
    "nodes_per_rack": 18,
    "gpus_per_node": 4,
    "gpu_model": "GB200",
    "inference_racks": 0,
    "rack_power_budget_watts": 150_000.0,
}


def config(fraction: float) -> dict[str, Any]:
    return {
        "remediation": {
            "drain_budget_fraction": fraction,
            "new_nodes": "in_service",
            "periodic_burn_in_days": 0,
        }
    }


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[Runtime]:
    # Half of the pool's 36 nodes: one whole domain fits the budget.
    runtime = make_runtime(tmp_path, config(0.5), **NVL72)
    runtime.sweep()
    yield runtime
    runtime.close()


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[Runtime]:
    # The default 10 %: 3 of 36 nodes, far less than a domain.
    runtime = make_runtime(tmp_path, config(0.1), **NVL72)
    runtime.sweep()
    yield runtime
    runtime.close()


def rack(rt: Runtime, name: str) -> list[Node]:
    return [n for n in rt.store.nodes() if n.rack == name]


def out(nodes: list[Node]) -> list[str]:
    return sorted(n.name for n in nodes if n.state is not Lifecycle.IN_SERVICE)


def test_each_rack_is_one_nvlink_domain(roomy: Runtime) -> None:
    r1, r2 = rack(roomy, "r01"), rack(roomy, "r02")
    assert len(r1) == len(r2) == 18
    assert all(n.gpu_model == "GB200" and n.gpu_count == 4 for n in r1 + r2)
    d1, d2 = {domain_of(n) for n in r1}, {domain_of(n) for n in r2}
    assert len(d1) == len(d2) == 1 and d1 != d2 and "" not in d1 | d2
    assert incidents.list_incidents(roomy.store) == []


def test_switch_tray_fault_drains_the_domain_as_one_unit(roomy: Runtime) -> None:
    assert roomy.datacenter is not None
    hit = roomy.datacenter.fail_switch_tray("r01", tray=3)
    assert len(hit) == 18
    roomy.sweep()
    r1 = rack(roomy, "r01")
    assert out(r1) == sorted(hit)  # all 18 at once, in the first sweep that saw it
    assert out(rack(roomy, "r02")) == []
    (inc,) = incidents.list_incidents(roomy.store)
    assert (inc.scope_kind, inc.scope, inc.state) == ("domain", domain_of(r1[0]), "open")
    assert inc.cause == "nvlink_domain"
    assert sorted(d["node"] for d in inc.evidence["drained"]) == sorted(hit)
    assert inc.evidence["waiting"] == [] and inc.held == 0
    backend = {s.name: s for s in roomy.backends.for_pool("training").list_nodes()}
    assert all(backend[n].drain for n in hit)
    drains = roomy.store.events(kinds=[EventKind.DRAIN], limit=100)
    assert sorted(e.node for e in drains) == sorted(hit)
    # The domain's fault, not each node's: lemons do not count it; the brake does not either.
    assert {(e.detail["cause"], e.detail["incident"], e.detail["check"]) for e in drains} == {
        ("nvlink_domain", inc.id, None)
    }
    # Later sweeps: still one incident, nothing else taken out, no brake opened.
    for _ in range(3):
        roomy.sweep()
    assert [i.id for i in incidents.list_incidents(roomy.store)] == [inc.id]
    assert out(rack(roomy, "r02")) == []


def test_a_domain_larger_than_the_budget_is_held_whole(tight: Runtime) -> None:
    assert tight.datacenter is not None
    hit = tight.datacenter.fail_switch_tray("r02")
    tight.sweep()
    budget = drain_budget(36, tight.policy)
    assert out(rack(tight, "r02")) == []  # not drained one by one either
    (inc,) = incidents.list_incidents(tight.store)
    assert inc.scope_kind == "domain" and inc.held == 18
    (held,) = inc.evidence["waiting"]
    assert "held by the drain budget" in held["why"]
    assert f"budget ({budget} nodes)" in held["why"]
    assert sorted(inc.evidence["failing"]) == sorted(hit)
    # Held sweeps after sweep: the budget stays the first rule, whoever decides.
    for _ in range(4):
        tight.sweep()
    # Without the gate's domain scope (see docs/grace-blackwell.md) the nodes' own nvlink
    # findings drain within the budget, never past it.
    assert len(out(rack(tight, "r02"))) <= budget
    domains = [i for i in incidents.list_incidents(tight.store) if i.scope_kind == "domain"]
    assert [i.id for i in domains] == [inc.id]


def test_an_observed_pool_records_what_it_would_do(roomy: Runtime) -> None:
    assert roomy.datacenter is not None
    pools.set_mode(roomy.store, roomy.clock, "training", "observe", None, "operator:test")
    time.sleep(MODE_TTL_SECONDS)
    roomy.datacenter.fail_switch_tray("r01")
    roomy.sweep()
    assert out(rack(roomy, "r01")) == []
    backend = roomy.backends.for_pool("training").list_nodes()
    assert not any(s.drain for s in backend)
    (inc,) = incidents.list_incidents(roomy.store)
    assert inc.scope_kind == "domain" and inc.evidence["drained"] == []
    assert "observe mode in pool training: would drain the domain" in inc.evidence["last_held"]
    # Enforced again: the domain goes out whole at the next sweep, on the same incident.
    pools.set_mode(roomy.store, roomy.clock, "training", "enforce", None, "operator:test")
    time.sleep(MODE_TTL_SECONDS)
    roomy.sweep()
    assert len(out(rack(roomy, "r01"))) == 18
    assert [i.id for i in incidents.list_incidents(roomy.store)] == [inc.id]


def test_the_domain_comes_back_through_burn_in_and_repair(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, config(0.5), **NVL72, technician_repair_hours=4)
    try:
        assert rt.datacenter is not None
        rt.sweep()
        rt.datacenter.fail_switch_tray("r01")
        seen: list[set[str]] = []
        for _ in range(14):
            rt.sweep()
            seen.append({n.state.value for n in rack(rt, "r01")})
            rt.datacenter.advance(1800)
        # Out together, through burn-in (links still down: failed) and repair, back together.
        assert seen[0] == {"drained"} and {"burn_in"} in seen and {"repair"} in seen
        assert seen[-1] == {"in_service"}
        assert all(len(states) == 1 for states in seen)
        (inc,) = incidents.list_incidents(rt.store)
        assert len(inc.evidence["drained"]) == 18
    finally:
        rt.close()
