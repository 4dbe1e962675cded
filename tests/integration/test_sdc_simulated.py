"""On the simulated datacenter: a GPU returning one flipped output bit is invisible to every
check but `sdc`, is caught by burn-in, and sends its node to repair at once (a fatal failure
is not retried) with the evidence kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.testing import make_runtime
from health.policy import Lifecycle

pytestmark = pytest.mark.integration


def test_a_flipped_bit_is_caught_by_burn_in_and_the_node_goes_to_repair(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    try:
        rt.sweep()
        assert rt.datacenter is not None
        rt.datacenter.inject("gpu-011", "sdc_bitflip", gpu=4)
        rt.sweep()
        node = rt.store.node("gpu-011")
        assert node is not None and node.health.finding is None  # no passive check sees it
        rt.nodes.drain("gpu-011", "suspected SDC", actor="operator:test", now_mode=True)
        rt.nodes.resume("gpu-011", actor="operator:test")
        for _ in range(3):
            rt.sweep()
        node = rt.store.node("gpu-011")
        assert node is not None and node.state is Lifecycle.REPAIR
        assert "sdc: GPU 4 answered " in node.drain_reason
        # Fatal evidence: repair after the first burn-in, not a second one that might pass.
        assert "burn-in failed on a fatal check (sdc), no retry" in node.drain_reason
        assert len(rt.store.events(node="gpu-011", kinds=["burn_in_started"], limit=10)) == 1
        (failed,) = rt.store.events(node="gpu-011", kinds=["burn_in_failed"], limit=10)
        assert failed.detail == {"fatal": True, "checks": ["sdc"]}
        (kept, *_) = rt.store.results("gpu-011", check="sdc")
        assert (kept.fatal, kept.gpus) == (True, (4,))
        assert kept.values["comparison"] == "cross_gpu" and kept.values["gpu"] == 4
        assert kept.values["expected"] != kept.values["got"]
    finally:
        rt.close()
