"""A posted fatal result and a running sweep, interleaved, on the real Slurm test cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.domain import AUTOMATION
from health.policy import Lifecycle
from tests.integration.conftest import SlurmCluster, runtime_over
from tests.integration.test_attention import drains, post_fatal, sweep_paused_in_listing

pytestmark = pytest.mark.integration


def test_a_fatal_result_during_a_sweep_drains_in_slurm_at_once_and_once(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    slurm.reset()
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    try:
        first, second = sorted(n.name for n in rt.store.nodes())[:2]
        with sweep_paused_in_listing(rt) as finish:
            post_fatal(rt, first)
            assert rt.act_on_attention() == 1  # while the sweep waits on slurmctld
            assert slurm.reasons().get(first) == "computectl: xid: XID 79"
            report = finish()
        # The sweep decided again on the node as drained: its next step, not a second drain.
        assert [a["action"] for a in report.actions] in ([], ["start_burn_in"])
        rt.sweep()
        node = rt.store.node(first)
        assert node is not None and node.state is not Lifecycle.IN_SERVICE
        assert node.drain_actor == AUTOMATION and len(drains(rt, first)) == 1

        # An operator's drain made while a sweep holds the old listing stays the operator's.
        with sweep_paused_in_listing(rt) as finish:
            rt.nodes.drain(second, "bad fan", actor="alice")
            finish()
        rt.sweep()
        node = rt.store.node(second)
        assert node is not None and node.state in (Lifecycle.DRAINING, Lifecycle.DRAINED)
        assert node.drain_actor == "alice"
        assert slurm.reasons().get(second) == "computectl: operator: bad fan"
    finally:
        rt.close()
        slurm.reset()
