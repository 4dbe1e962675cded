"""Where nodes sit, read from the real test clusters as configured: Slurm's topology/tree
and rack features (testenv/slurm: leaf1 gpu-[001-004], leaf2 gpu-[005-008], two nodes per
rack as Feature=rack:rack-N), Kubernetes node labels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.runtime import Runtime
from scheduler.kubernetes.settings import KubernetesSettings
from scheduler.protocol import NodeStatus
from tests.integration.conftest import KubeCluster, SlurmCluster, runtime_over

pytestmark = pytest.mark.integration


def listed(rt: Runtime) -> dict[str, NodeStatus]:
    """Every node as the runtime's backends list it."""
    return {s.name: s for wm, _ in rt.backends.groups() for s in wm.list_nodes()}


@pytest.fixture
def close() -> Iterator[list[Runtime]]:
    runtimes: list[Runtime] = []
    yield runtimes
    for rt in runtimes:
        rt.close()


def test_slurm_nodes_carry_their_rack_and_leaf_switch(
    slurm: SlurmCluster, tmp_path: Path, close: list[Runtime]
) -> None:
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    close.append(rt)
    nodes = listed(rt)
    assert {n: (s.rack, s.switch) for n, s in nodes.items()} == {
        f"gpu-00{i}": (f"rack-{(i + 1) // 2}", "leaf1" if i <= 4 else "leaf2") for i in range(1, 9)
    }
    # As slurmctld knows them, one switch line each: what the backend read.
    assert "SwitchName=leaf2 Level=0" in slurm.run("scontrol", "show", "topology")


@pytest.mark.parametrize(("prefix", "rack"), [("rack:rack-", "1"), ("nope:", ""), ("", "")])
def test_slurm_rack_feature_prefix_is_the_pools_setting(
    slurm: SlurmCluster, tmp_path: Path, close: list[Runtime], prefix: str, rack: str
) -> None:
    rt = runtime_over(slurm.computectl_toml, tmp_path, {"rack_feature_prefix": prefix})
    close.append(rt)
    node = listed(rt)["gpu-002"]
    assert (node.rack, node.switch) == (rack, "leaf1")


@pytest.fixture
def labelled(api: Any) -> Iterator[Any]:
    """The tests' client; every topology label a test put on a node is removed after it."""
    yield api
    keys = ("topology.computectl.io/rack", "topology.computectl.io/switch", "example.com/rack")
    for node in api.list_node(label_selector="computectl.io/testenv=kwok").items:
        if set(node.metadata.labels or {}) & set(keys):
            api.patch_node(node.metadata.name, {"metadata": {"labels": dict.fromkeys(keys)}})


def test_kubernetes_nodes_carry_the_rack_and_switch_their_labels_name(
    kube: KubeCluster, labelled: Any, tmp_path: Path, close: list[Runtime]
) -> None:
    k = KubernetesSettings()
    labels = {k.rack_label: "r12", k.switch_label: "leaf-3", "example.com/rack": "other"}
    labelled.patch_node("kwok-gpu-001", {"metadata": {"labels": labels}})
    labelled.patch_node("kwok-gpu-002", {"metadata": {"labels": {k.rack_label: "r13"}}})
    rt = runtime_over(kube.computectl_toml, tmp_path)
    close.append(rt)
    nodes = listed(rt)
    assert (nodes["kwok-gpu-001"].rack, nodes["kwok-gpu-001"].switch) == ("r12", "leaf-3")
    assert (nodes["kwok-gpu-002"].rack, nodes["kwok-gpu-002"].switch) == ("r13", "")
    assert {(s.rack, s.switch) for n, s in nodes.items() if n > "kwok-gpu-002"} == {("", "")}

    other = runtime_over(
        kube.computectl_toml, tmp_path / "other", {"rack_label": "example.com/rack"}
    )
    close.append(other)
    node = listed(other)["kwok-gpu-001"]
    assert (node.rack, node.switch) == ("other", "leaf-3")
