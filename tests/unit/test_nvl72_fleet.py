"""An NVL72 rack in the simulated fleet: 18 compute trays of 4 GB200 GPUs, one NVLink domain
per rack as NVML's fabric info names it, and a switch tray whose failure degrades every GPU
of the rack's domain (2 of its 18 links each) and nothing outside it."""

from __future__ import annotations

import pytest

from health.nvlink_domain import fabric_of, node_domain
from health.result import Status
from health.runner import run_passive
from health.simulated import FleetSpec, SimulatedFleet
from health.simulated.nvl72 import SWITCH_TRAY_FAULT, fail_switch_tray
from health.simulated.telemetry import read_node
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds

T0 = 1_767_600_000.0
NVL72 = FleetSpec(racks=2, nodes_per_rack=18, gpus_per_node=4, gpu_model="GB200")
EXPECT = NodeExpectation(gpu_count=4, gpu_model="GB200", nvlinks_per_gpu=18)


def nvlink(f: SimulatedFleet, name: str) -> tuple[Status, str]:
    snap = read_node(f, f.nodes[name], None)
    r = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["nvlink"]
    return r.status, str(r.values.get("nvlink_domain", ""))


def test_each_rack_is_one_domain_of_72_gpus() -> None:
    f = SimulatedFleet(NVL72, 5, T0)
    domains: dict[str, set[str]] = {}
    for n in f.nodes.values():
        snap = read_node(f, n, None)
        assert len(fabric_of(snap)) == 4 and all(x.healthy for x in fabric_of(snap))
        domains.setdefault(n.rack, set()).add(node_domain(fabric_of(snap)))
    assert {r: len(d) for r, d in domains.items()} == {"r01": 1, "r02": 1}
    assert domains["r01"] != domains["r02"]
    # The same seed names the same domains; another seed others.
    again = SimulatedFleet(NVL72, 5, T0)
    other = SimulatedFleet(NVL72, 6, T0)
    name = "gpu-001"
    first = node_domain(fabric_of(read_node(f, f.nodes[name], None)))
    assert node_domain(fabric_of(read_node(again, again.nodes[name], None))) == first
    assert node_domain(fabric_of(read_node(other, other.nodes[name], None))) != first


def test_hgx_nodes_have_no_fabric() -> None:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=2, gpu_model="B200"), 5, T0)
    assert all(fabric_of(read_node(f, n, None)) == () for n in f.nodes.values())
    with pytest.raises(ValueError, match="no NVLink switch trays"):
        fail_switch_tray(f, "r01")


def test_a_failed_switch_tray_degrades_the_whole_domain_only() -> None:
    f = SimulatedFleet(NVL72, 5, T0)
    hit = fail_switch_tray(f, "r01", tray=4)
    assert hit == [f"gpu-{i:03d}" for i in range(1, 19)]
    for name in hit:
        n = f.nodes[name]
        assert all(g.nvlink_down == [8, 9] for g in n.gpus)
        assert n.faults[-1]["kind"] == SWITCH_TRAY_FAULT
        status, domain = nvlink(f, name)
        assert status is Status.FAIL and domain
    assert all(nvlink(f, f"gpu-{i:03d}")[0] is Status.PASS for i in range(19, 37))
    f.repair("gpu-001")
    assert nvlink(f, "gpu-001")[0] is Status.PASS
    with pytest.raises(ValueError, match="switch trays 0-8"):
        fail_switch_tray(f, "r01", tray=9)
    with pytest.raises(KeyError):
        fail_switch_tray(f, "r09")
