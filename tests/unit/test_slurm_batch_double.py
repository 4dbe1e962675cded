"""Draining and resuming 16 Slurm nodes named by one hostlist is one ``scontrol update`` each,
through the product's path (`NodeService.drain_many`/`resume_many` on a runtime whose Slurm
pool is wired to the shipped double). tests/integration/test_slurm_batch.py shows the same on
the real 8-node test cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.backends import Wired, WiringContext
from compute.config import PoolSettings, load_settings
from compute.domain import EventKind
from compute.runtime import Runtime
from health.policy import Lifecycle
from scheduler.slurm import SlurmWorkloadManager
from scheduler.slurm.burnin import BurnInReservations
from scheduler.slurm.testing import InMemorySlurm

OPERATOR = "operator:alice"
NAMES = [f"gpu-{i:03d}" for i in range(1, 17)]
HOSTLIST = "gpu-[001-016]"
REASON = "computectl: operator: rack swap"


@pytest.fixture
def slurm() -> InMemorySlurm:
    return InMemorySlurm.of(dict.fromkeys(NAMES, "training"))


@pytest.fixture
def rt(slurm: InMemorySlurm, tmp_path: Path) -> Iterator[Runtime]:
    def build(pools: list[PoolSettings], ctx: WiringContext) -> dict[str, Wired]:
        # As scheduler.slurm.wiring builds it, over the double instead of Slurm's CLIs.
        reservations = BurnInReservations(slurm, user="root")
        wm = SlurmWorkloadManager(slurm, {"training": "training"}, reservations)
        return {p.name: Wired(wm) for p in pools}

    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(tmp_path),
            "pools": [{"name": "training", "backend": "slurm", "gpu_model": "H100-SXM"}],
            "remediation": {"new_nodes": "in_service", "periodic_burn_in_days": 0},
        },
    )
    runtime = Runtime.build(settings, wiring={"slurm": build})
    assert not runtime.sweep().errors
    yield runtime
    runtime.close()


def test_a_hostlist_of_16_nodes_is_drained_and_resumed_with_one_scontrol_update(
    rt: Runtime, slurm: InMemorySlurm
) -> None:
    slurm.calls.clear()
    batch = rt.nodes.drain_many([HOSTLIST], "rack swap", actor=OPERATOR)
    assert [n.name for n in batch.done] == NAMES and not batch.refused
    assert slurm.commands("scontrol update") == [
        f"scontrol update nodename={','.join(NAMES)} state=drain reason={REASON}"
    ]
    assert slurm.reasons() == dict.fromkeys(NAMES, REASON)
    for name in NAMES:
        node = rt.store.node(name)
        assert node is not None and (node.state, node.drain_reason) == (Lifecycle.DRAINED, REASON)
        events = rt.store.events(node=name, kinds=[EventKind.DRAIN], limit=5)
        assert len(events) == 1 and events[0].actor == OPERATOR
    assert sorted(a.target for a in rt.store.audit(limit=100) if a.action == "node.drain") == NAMES

    slurm.calls.clear()
    batch = rt.nodes.resume_many([HOSTLIST], actor=OPERATOR, skip_burn_in=True)
    assert [n.name for n in batch.done] == NAMES and not batch.refused
    assert {n.state for n in batch.done} == {Lifecycle.IN_SERVICE}
    assert slurm.commands("scontrol update") == [
        f"scontrol update nodename={','.join(NAMES)} state=resume"
    ]
    assert slurm.reasons() == {}
    assert {
        s.name: s.drain for s in rt.backends.for_pool("training").list_nodes()
    } == dict.fromkeys(NAMES, False)
    # The sweep agrees with what was recorded: nothing adopted, nothing lifted outside.
    slurm.calls.clear()
    assert not rt.sweep().errors
    assert {n.state for n in rt.store.nodes()} == {Lifecycle.IN_SERVICE}
    assert not slurm.commands("scontrol update")
