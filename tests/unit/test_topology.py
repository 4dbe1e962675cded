"""Where a node sits: racks from Slurm node features or Kubernetes labels, leaf switches from
``scontrol show topology`` (topology/tree) or labels; whatever they say is outside input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import SchedulerError, Unreachable
from scheduler.kubernetes.backend import KubernetesWorkloadManager, TopologyLabels
from scheduler.kubernetes.settings import KubernetesSettings
from scheduler.kubernetes.testing import InMemoryKube
from scheduler.slurm import SlurmWorkloadManager
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.parse import node_rack, parse_topology
from scheduler.slurm.settings import SlurmSettings
from scheduler.slurm.testing import InMemorySlurm
from scheduler.topology import topology_name

# What 22.05 prints with TopologyPlugin=topology/tree (captured from testenv/slurm).
TREE = """\
SwitchName=leaf1 Level=0 LinkSpeed=1 Nodes=gpu-[001-004]
SwitchName=leaf2 Level=0 LinkSpeed=1 Nodes=gpu-[005-008]
SwitchName=spine Level=1 LinkSpeed=1 Nodes=gpu-[001-008] Switches=leaf[1-2]
"""
RACK = SlurmSettings().rack_feature_prefix


def test_leaf_switches_from_the_tree() -> None:
    switches = parse_topology(TREE)
    assert switches == {f"gpu-00{i}": "leaf1" if i <= 4 else "leaf2" for i in range(1, 9)}
    assert parse_topology("") == {}


def test_a_switch_computectl_cannot_believe_is_left_out() -> None:
    text = (
        "SwitchName=bad/name Level=0 Nodes=gpu-001\n"
        "SwitchName=huge Level=0 Nodes=gpu-[0-999999999]\n"
        "SwitchName=backwards Level=0 Nodes=gpu-[9-1]\n"
        "SwitchName=leaf1 Level=0 Nodes=gpu-[001-002]\n"
        "SwitchName=leaf9 Level=0 Nodes=gpu-002\n"  # a second leaf: the first one stays
    )
    assert parse_topology(text) == {"gpu-001": "leaf1", "gpu-002": "leaf1"}


@given(st.text(max_size=300))
def test_any_topology_text_gives_believable_switch_names(text: str) -> None:
    for switch in parse_topology(text).values():
        assert topology_name(switch) == switch


@pytest.mark.parametrize(
    ("features", "rack"),
    [
        ("rack:r12", "r12"),
        ("nvlink,rack:r12,rack:r13", "r12"),
        (["ib", "rack:r-1.a"], "r-1.a"),  # later releases list them
        ("", ""),
        (None, ""),
        ("nvlink", ""),
        ("rack:", ""),
        ("rack:../../etc", ""),
        ("rack:r\x1b[31m", ""),
        (f"rack:{'r' * 129}", ""),
        (42, ""),
    ],
)
def test_rack_from_a_node_feature(features: object, rack: str) -> None:
    assert node_rack({"name": "gpu-001", "features": features}, RACK) == rack


@given(st.one_of(st.text(max_size=200), st.lists(st.text(max_size=40), max_size=5)))
def test_any_features_give_a_believable_rack_or_none(features: object) -> None:
    rack = node_rack({"features": features}, RACK)
    assert topology_name(rack) == rack


def test_no_prefix_reads_no_rack() -> None:
    assert node_rack({"features": "rack:r12"}, "") == ""


@dataclass
class TopologySlurm(InMemorySlurm):
    """The Slurm double with ``scontrol show topology`` (its own answers no such question)."""

    topology: str = ""
    topology_error: SchedulerError | None = None
    topology_calls: list[int] = field(default_factory=list)

    def topology_text(self) -> str:
        self.topology_calls.append(1)
        if self.topology_error is not None:
            raise self.topology_error
        return self.topology


def slurm_cluster() -> TopologySlurm:
    slurm = TopologySlurm(InMemorySlurm.of({f"gpu-00{i}": "training" for i in range(1, 9)}).nodes)
    for i, raw in enumerate(slurm.nodes.values()):
        raw["features"] = f"nvlink,rack:rack-{i // 2 + 1}"
    return slurm


def test_slurm_lists_racks_and_switches_reading_the_topology_once() -> None:
    slurm = slurm_cluster()
    slurm.topology = TREE
    wm = SlurmWorkloadManager(slurm, {"training": "training"}, racks={"training": RACK})
    nodes = {s.name: s for s in wm.list_nodes()}
    assert len(slurm.topology_calls) == 1
    assert (nodes["gpu-001"].rack, nodes["gpu-001"].switch) == ("rack-1", "leaf1")
    assert (nodes["gpu-008"].rack, nodes["gpu-008"].switch) == ("rack-4", "leaf2")
    # One node, as its health check asks: the rack, but no topology read for it.
    assert (wm.node("gpu-005").rack, wm.node("gpu-005").switch) == ("rack-3", "")
    assert len(slurm.topology_calls) == 1


def test_slurm_without_topology_or_rack_prefix_knows_neither() -> None:
    slurm = slurm_cluster()  # topology/none: an empty answer
    wm = SlurmWorkloadManager(slurm, {"training": "training"})
    assert {(s.rack, s.switch) for s in wm.list_nodes()} == {("", "")}


def test_a_driver_without_topology_or_a_failing_command_means_no_switches() -> None:
    plain = InMemorySlurm.of({"gpu-001": "training"})
    assert SlurmWorkloadManager(plain, {"training": "training"}).list_nodes()[0].switch == ""
    slurm = slurm_cluster()
    slurm.topology_error = SchedulerError("scontrol show: Invalid user for SlurmUser")
    wm = SlurmWorkloadManager(slurm, {"training": "training"})
    assert {s.switch for s in wm.list_nodes()} == {""}
    # An unreachable controller is an unreadable listing, not a fabric without switches.
    slurm.topology_error = Unreachable("Unable to contact slurm controller")
    with pytest.raises(Unreachable):
        wm.list_nodes()


def test_scontrol_without_a_topology_plugin_answers_empty(tmp_path: Path) -> None:
    scontrol = tmp_path / "scontrol"
    # 22.05 with topology/none: the message on stderr, exit status 0.
    scontrol.write_text(
        "#!/bin/sh\necho 'scontrol: error: No topology information available' >&2\n"
    )
    scontrol.chmod(0o755)
    assert parse_topology(SlurmCommands(bin_dir=tmp_path).topology_text()) == {}


def test_kubernetes_racks_and_switches_from_labels() -> None:
    k = KubernetesSettings()
    kube = InMemoryKube()
    pool = {"computectl.io/pool": "training"}
    kube.add_node("gpu-1", {**pool, k.rack_label: "r12", k.switch_label: "leaf-3"})
    kube.add_node("gpu-2", {**pool, k.rack_label: "r12;drop", k.switch_label: "-x"})
    kube.add_node("gpu-3", pool)
    labels = TopologyLabels(k.rack_label, k.switch_label)
    wm = KubernetesWorkloadManager(kube, {"training": pool}, topology={"training": labels})
    assert [(s.name, s.rack, s.switch) for s in wm.list_nodes()] == [
        ("gpu-1", "r12", "leaf-3"),
        ("gpu-2", "", ""),
        ("gpu-3", "", ""),
    ]
    assert wm.node("gpu-1").switch == "leaf-3"
    unlabelled = KubernetesWorkloadManager(kube, {"training": pool})
    assert {(s.rack, s.switch) for s in unlabelled.list_nodes()} == {("", "")}
    only_racks = {"training": TopologyLabels(k.rack_label, "")}
    wm = KubernetesWorkloadManager(kube, {"training": pool}, topology=only_racks)
    assert [s.switch for s in wm.list_nodes()] == ["", "", ""]
    assert wm.list_nodes()[0].rack == "r12"
