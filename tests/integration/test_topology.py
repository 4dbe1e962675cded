"""Where nodes sit, read from the real test clusters as configured: Slurm's topology/tree
and rack features (testenv/slurm: leaf1 gpu-[001-004], leaf2 gpu-[005-008], two nodes per
rack as Feature=rack:rack-N), Kubernetes node labels; and the configuration's [topology]
placing the nodes no workload manager places."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.config import load_settings
from compute.runtime import Runtime
from compute.store import topology as kept
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


def runtime_placing(cluster_toml: Path, data_dir: Path, topology: dict[str, Any]) -> Runtime:
    """As runtime_over, with a [topology] section."""
    pools = [
        p.model_dump(mode="json", exclude_none=True)
        for p in load_settings(cluster_toml, env={}).pools
    ]
    for p in pools:
        p["adopt"] = "enforce"
    overrides = {
        "data_dir": str(data_dir),
        "remediation": {"new_nodes": "in_service", "periodic_burn_in_days": 0},
        "pools": pools,
        "topology": topology,
    }
    rt = Runtime.build(load_settings(cluster_toml, env={}, overrides=overrides))
    rt.sweep()
    return rt


def placed(racks: dict[str, str], budget: float = 30_000.0, room: str = "hall-b") -> dict[str, Any]:
    return {
        "sites": [{"name": "test-site"}],
        "rooms": [{"name": room, "site": "test-site", "cooling_limit_watts": 50_000.0}],
        "rows": [{"name": "row-1", "room": room}],
        "racks": [
            {
                "name": rack,
                "room": room,
                "row": "row-1",
                "power_budget_watts": budget,
                "pdus": [f"{rack}-pdu-a", f"{rack}-pdu-b"],
                "nodes": nodes,
            }
            for rack, nodes in racks.items()
        ],
    }


def stored_racks(rt: Runtime) -> dict[str, str]:
    return {n.name: n.rack for n in rt.store.nodes()}


def test_kubernetes_nodes_no_label_places_sit_where_the_configuration_says(
    kube: KubeCluster, labelled: Any, tmp_path: Path, close: list[Runtime]
) -> None:
    k = KubernetesSettings()
    labelled.patch_node("kwok-gpu-001", {"metadata": {"labels": {k.rack_label: "r12"}}})
    topo = placed({"r21": "kwok-gpu-[001-002]", "r22": "kwok-gpu-[003-004]"})
    rt = runtime_placing(kube.computectl_toml, tmp_path, topo)
    close.append(rt)
    racks = stored_racks(rt)
    # The label's word wins; the configuration places the rest it names; others unplaced.
    assert [racks[f"kwok-gpu-00{i}"] for i in range(1, 5)] == ["r12", "r21", "r22", "r22"]
    assert {r for n, r in racks.items() if n > "kwok-gpu-004"} == {"unassigned"}
    # Sites, rooms, rows, racks with their budgets, cooling and PDUs, as configured.
    infos = {r.name: r for r in kept.racks(rt.store)}
    assert infos["r21"].budget_watts == 30_000.0 and infos["r21"].row == "row-1"
    assert infos["r22"].pdus == ("r22-pdu-a", "r22-pdu-b")
    assert [(r.name, r.site, r.cooling_limit_watts) for r in kept.rooms(rt.store)] == [
        ("hall-b", "test-site", 50_000.0)
    ]
    rt.close()
    close.remove(rt)

    # The configuration moves a node it placed; the labelled one stays where its label says.
    moved = placed({"r21": "kwok-gpu-[001-002],kwok-gpu-004", "r22": "kwok-gpu-003"})
    rt = runtime_placing(kube.computectl_toml, tmp_path, moved)
    close.append(rt)
    racks = stored_racks(rt)
    assert [racks[f"kwok-gpu-00{i}"] for i in range(1, 5)] == ["r12", "r21", "r22", "r21"]


def test_slurm_features_win_over_the_configuration(
    slurm: SlurmCluster, tmp_path: Path, close: list[Runtime]
) -> None:
    topo = placed({"rack-1": "gpu-[001-002]", "elsewhere": "gpu-003"}, budget=20_000.0)
    rt = runtime_placing(slurm.computectl_toml, tmp_path, topo)
    close.append(rt)
    racks = stored_racks(rt)
    # Slurm's Feature=rack:rack-2 for gpu-003 stands; rack-1's budget is the configuration's.
    assert (racks["gpu-001"], racks["gpu-003"]) == ("rack-1", "rack-2")
    assert {r.name: r.budget_watts for r in kept.racks(rt.store)}["rack-1"] == 20_000.0
