"""A real Slurm and Kubernetes cluster newly adopted by computectl starts in observe mode:
what it would do (burn-in for idle nodes never seen, a drain for a fatal failure) is recorded
as would_act events and nothing changes on the nodes until `computectl pools enable`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compute.config import load_settings
from compute.runtime import Runtime
from compute.services import pools
from compute.services.gate import MODE_TTL_SECONDS, WOULD_ACT
from compute.testing import result
from health.policy import Lifecycle
from tests.integration.conftest import KubeCluster, SlurmCluster

pytestmark = pytest.mark.integration


def adopted(cluster_toml: Path, data_dir: Path, new_nodes: str) -> Runtime:
    """The cluster's own configuration as an operator would first run it: its pools
    adopted with their backend's default mode."""
    pools = [
        p.model_dump(mode="json", exclude_none=True, exclude={"adopt"})
        for p in load_settings(cluster_toml, env={}).pools
    ]
    overrides: dict[str, Any] = {
        "data_dir": str(data_dir),
        "remediation": {"periodic_burn_in_days": 0, "new_nodes": new_nodes},
        "pools": pools,
    }
    return Runtime.build(load_settings(cluster_toml, env={}, overrides=overrides))


def observe_then_enable(
    cluster_toml: Path, tmp: Path, changed: Callable[[], set[str]], reset: Callable[[], None]
) -> None:
    # Idle nodes never seen are due a burn-in: computectl would drain each for it.
    rt = adopted(cluster_toml, tmp / "burn-in", "burn_in")
    try:
        assert {p.mode for p in rt.store.pools()} == {"observe"}
        for _ in range(3):
            rt.sweep()
        assert changed() == set()
        training = rt.store.nodes(pool="training")
        names = {n.name for n in training}
        # Stored as they are: in service, not in a burn-in nothing started.
        assert {n.state for n in training} == {Lifecycle.IN_SERVICE}
        would = rt.store.events(kinds=[WOULD_ACT], limit=1000)
        assert {e.node for e in would if e.detail["action"] == "start_burn_in"} >= names
        assert len(would) == len({(e.node, e.detail["action"]) for e in would})
        pools.set_mode(rt.store, rt.clock, "training", "enforce", None, "operator:test")
        time.sleep(MODE_TTL_SECONDS)  # the acting gate reads modes at most this often
        rt.sweep()
        # Enabled, nodes already serving are not all taken out at once for a first burn-in:
        # periodic burn-ins (off here) bring them through within the budget.
        assert changed() == set()
    finally:
        rt.close()
    reset()
    # Nodes in service: a fatal failure would drain one.
    rt = adopted(cluster_toml, tmp / "fatal", "in_service")
    try:
        rt.sweep()
        fatal = sorted(names)[0]
        rt.ingest.ingest(fatal, [result(fatal, "xid", fatal=True, at=rt.clock.now())])
        for _ in range(2):
            rt.sweep()
        assert changed() == set()
        report = pools.report(rt.store, rt.clock, "training", pools.parse_window("1h"))
        assert report.by_action == {"drain": {"xid": 1}} and report.nodes["drain"] == [fatal]
        pools.set_mode(rt.store, rt.clock, "training", "enforce", None, "operator:test")
        time.sleep(MODE_TTL_SECONDS)  # the acting gate reads modes at most this often
        rt.sweep()
        assert changed() == {fatal}
        node = rt.store.node(fatal)
        assert node is not None and node.state is not Lifecycle.IN_SERVICE
    finally:
        rt.close()


def test_adopted_slurm_cluster_is_observed_until_enabled(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    observe_then_enable(slurm.computectl_toml, tmp_path, lambda: set(slurm.reasons()), slurm.reset)


def test_adopted_kubernetes_cluster_is_observed_until_enabled(
    kube: KubeCluster, tmp_path: Path
) -> None:
    def cordoned() -> set[str]:
        core = kube.core()
        try:
            return {
                n.metadata.name
                for n in core.list_node(label_selector="computectl.io/testenv=kwok").items
                if n.spec.unschedulable or n.spec.taints
            }
        finally:
            core.api_client.close()

    observe_then_enable(kube.computectl_toml, tmp_path, cordoned, kube.reset)
