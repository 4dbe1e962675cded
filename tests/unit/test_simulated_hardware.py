"""The simulated fleet makes a node's GPUs only when something touches them: a node read
before and after they are made reads the same, and a burn-in's reset of a node with nothing
to reset changes nothing that is persisted."""

from __future__ import annotations

import pytest

from health.simulated import FaultKind, FleetSpec, SimulatedFleet
from health.simulated.telemetry import read_node

T0 = 1_767_600_000.0
LOADS = (0.0, 0.01, 0.049, 0.05, 0.3, 0.5, 0.97, 0.975, 0.99, 1.0)


@pytest.mark.parametrize("model", ["H100-SXM", "H200", "A100-SXM", "B200", "GB200"])
def test_a_pristine_node_reads_as_one_whose_gpus_were_made(model: str) -> None:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=len(LOADS), gpu_model=model), 9, T0)
    for minute in range(40):
        f.advance(T0 + 60 * minute)
        for i, n in enumerate(f.nodes.values()):
            f.set_load(n.name, [LOADS[(i + g + minute) % len(LOADS)] for g in range(8)])
        for n in f.nodes.values():
            assert n.pristine
            before = read_node(f, n, None)
            assert n.gpus  # made now, from the same identities
            assert not n.pristine
            assert read_node(f, n, None) == before
            n._gpus = None  # pristine again for the next minute


def test_gpus_share_their_node_loads() -> None:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=1), 1, T0)
    (n,) = f.nodes.values()
    f.set_load(n.name, [0.25] * 8)
    assert [g.utilisation for g in n.gpus] == [0.25] * 8
    f.set_load(n.name, [1.5] + [0.5] * 7)
    assert n.gpus[0].utilisation == 1.0 and n.loads[1] == 0.5


def test_reset_and_repair_of_a_node_with_nothing_to_undo_change_nothing() -> None:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=2), 1, T0)
    a, b = f.nodes
    f.reset(a)
    f.repair(a)
    assert not f.changed and f.nodes[a].pristine
    f.inject(b, FaultKind.XID48_DBE, gpu=2)
    f.changed.clear()
    f.reset(b)
    assert f.changed == {b} and f.nodes[b].gpus[2].ecc_volatile == 0


def test_the_probe_reads_a_pristine_node_without_making_its_gpus() -> None:
    from contextlib import nullcontext

    from health.simulated import SimulatedProbe

    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=2), 1, T0)
    a, b = f.nodes
    f.inject(b, FaultKind.SLOW_GEMM, gpu=0)
    pa, pb = (SimulatedProbe(lambda: nullcontext(f), name) for name in (a, b))
    assert pa.gemm_tflops(0, "bf16") > pb.gemm_tflops(0, "bf16")
    assert pa.nccl_busbw_gbps() > 0 and f.nodes[a].pristine
    with pytest.raises(IndexError):
        pa.gemm_tflops(8, "bf16")
