"""A node's NVLink domain as its workload manager lists it, on the real test clusters: a kwok
node carrying the GPU feature discovery's clique label on the test API server is in that
domain (listed, kept by a sweep, found by the domains' query), a label computectl cannot
believe is none; Slurm's `scontrol show topology` of the test cluster (topology/tree: the
block plugin comes with Slurm 23.11, the testenv runs 22.05) gives no block and no domain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.runtime import Runtime
from compute.services.brake import scopes_of
from compute.services.nvlink_domains import domain_of
from compute.store.nvlink_domains import members
from scheduler.protocol import NodeStatus
from scheduler.slurm.parse import parse_blocks, parse_topology
from scheduler.topology import CLIQUE_LABEL
from tests.integration.conftest import KubeCluster, SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

UUID = "5e6f0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"


def listed(rt: Runtime) -> dict[str, NodeStatus]:
    return {s.name: s for wm, _ in rt.backends.groups() for s in wm.list_nodes()}


@pytest.fixture
def close() -> Iterator[list[Runtime]]:
    runtimes: list[Runtime] = []
    yield runtimes
    for rt in runtimes:
        rt.close()


@pytest.fixture
def cliques(api: Any) -> Iterator[Any]:
    """The tests' client; every clique label a test put on a node is removed after it."""
    yield api
    for node in api.list_node(label_selector="computectl.io/testenv=kwok").items:
        if CLIQUE_LABEL in (node.metadata.labels or {}):
            api.patch_node(node.metadata.name, {"metadata": {"labels": {CLIQUE_LABEL: None}}})


def test_a_kwok_node_with_the_clique_label_is_in_that_domain(
    kube: KubeCluster,
    cliques: Any,
    tmp_path: Path,
    close: list[Runtime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("kwok-gpu-001", "kwok-gpu-002"):
        cliques.patch_node(name, {"metadata": {"labels": {CLIQUE_LABEL: f"{UUID.upper()}.3"}}})
    # A valid label value, but no clique: not believed, and the listing goes on.
    cliques.patch_node("kwok-gpu-003", {"metadata": {"labels": {CLIQUE_LABEL: "rack-7"}}})
    rt = runtime_over(kube.computectl_toml, tmp_path)
    close.append(rt)
    nodes = listed(rt)
    domain = f"{UUID}/3"
    assert {n: s.nvlink_domain for n, s in nodes.items() if s.nvlink_domain} == {
        "kwok-gpu-001": domain,
        "kwok-gpu-002": domain,
    }
    assert f"{CLIQUE_LABEL} labels not understood, ignored: kwok-gpu-003 ('rack-7')" in caplog.text
    # Kept by the first sweep: the one answer to "which domain", and the judgement's query.
    stored = rt.store.node("kwok-gpu-001")
    assert stored is not None and stored.health.listed_domain == domain
    assert domain_of(stored) == domain and ("domain", domain) in scopes_of(stored)
    assert {m.node: m.domain for m in members(rt.store)} == {
        "kwok-gpu-001": domain,
        "kwok-gpu-002": domain,
    }
    other = rt.store.node("kwok-gpu-003")
    assert other is not None and domain_of(other) == ""

    # The label goes: so does the domain, at the next sweep.
    cliques.patch_node("kwok-gpu-002", {"metadata": {"labels": {CLIQUE_LABEL: None}}})
    rt.sweep()
    gone = rt.store.node("kwok-gpu-002")
    assert gone is not None and domain_of(gone) == ""


def test_slurm_without_the_block_plugin_lists_no_domain(
    slurm: SlurmCluster, tmp_path: Path, close: list[Runtime]
) -> None:
    text = slurm.run("scontrol", "show", "topology")
    # The real output, as slurmctld prints it: switches, no blocks.
    assert "SwitchName=leaf1" in text and parse_topology(text)
    assert parse_blocks(text) == ({}, [])
    rt = runtime_over(slurm.computectl_toml, tmp_path)
    close.append(rt)
    nodes = listed(rt)
    assert nodes and all(s.nvlink_domain == "" for s in nodes.values())
    assert members(rt.store) == []
