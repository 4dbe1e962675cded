"""A node's NVLink domain as its workload manager lists it: the GPU feature discovery's clique
label and Slurm's topology/block read as hostile input (never a crash, never garbage
believed), resolved against the nodes' own NVML reports, kept on the node, and used where
the node has not reported one itself (its own report wins; a disagreement is one event)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from compute.domain import EventKind, Node
from compute.services.brake import scopes_of
from compute.services.inventory import reconcile
from compute.services.listed_domains import resolve
from compute.services.nvlink_domains import domain_faults, domain_of
from compute.store import Store
from compute.store.nvlink_domains import members
from health.nvlink_domain import BLOCK_DOMAIN, DOMAIN_NAME, believable_domain
from health.policy import Lifecycle, NodeHealth
from scheduler.protocol import NodeStatus
from scheduler.slurm.parse import parse_blocks, parse_topology
from scheduler.topology import block_domain, clique_domain

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)
UUID = "5e6f0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
DOMAIN = f"{UUID}/3"
OTHER = f"{UUID}/4"

# What `scontrol show topology` prints under topology/block (Slurm 24.11's
# src/plugins/topology/block/topology_block.c, _print_topo_record): one line per block,
# then the aggregated blocks.
BLOCK_OUTPUT = """\
BlockName=nvl72-a BlockIndex=0 Nodes=gb-[001-018] BlockSize=18
BlockName=nvl72-b BlockIndex=1 Nodes=gb-[019-036] BlockSize=18
AggregatedBlock=nvl72-[a-b] BlockIndex=2 Nodes=gb-[001-036] BlockSize=36
"""
# And under topology/tree (as the test cluster's slurmctld 22.05 prints it).
TREE_OUTPUT = """\
SwitchName=leaf1 Level=0 LinkSpeed=1 Nodes=gpu-[001-004]
SwitchName=leaf2 Level=0 LinkSpeed=1 Nodes=gpu-[005-008]
"""


def believed(value: str) -> bool:
    return bool(DOMAIN_NAME.fullmatch(value) or BLOCK_DOMAIN.fullmatch(value))


# -- the clique label -----------------------------------------------------------------------


def test_the_clique_label_names_the_domain_as_nvml_does() -> None:
    assert clique_domain(f"{UUID}.3") == DOMAIN
    assert clique_domain(f"{UUID.upper()}.0003") == DOMAIN
    assert believable_domain(clique_domain(f"{UUID}.4294967295")) == f"{UUID}/4294967295"


def test_a_clique_label_computectl_does_not_understand_is_no_domain() -> None:
    for bad in (
        None,
        3,
        "",
        UUID,
        f"{UUID}/3",
        f"{UUID}.",
        f"{UUID}.-1",
        f"{UUID}.4294967296",
        f"{UUID}.3\n",
        f" {UUID}.3",
        "00000000-0000-0000-0000-000000000000.1",
        f"{UUID}.3.1",
        "x" * 10_000,
    ):
        assert clique_domain(bad) == "", bad


@given(st.one_of(st.text(), st.binary().map(lambda b: b.hex()), st.none(), st.integers()))
def test_any_label_value_is_a_believable_domain_or_none(value: object) -> None:
    got = clique_domain(value)
    assert got == "" or (DOMAIN_NAME.fullmatch(got) and believable_domain(got) == got)


@given(st.uuids(), st.integers(min_value=0, max_value=2**32 - 1))
def test_every_label_gfd_writes_is_read(uuid: object, clique: int) -> None:
    if str(uuid) == "00000000-0000-0000-0000-000000000000":
        return
    assert clique_domain(f"{uuid}.{clique}") == f"{uuid}/{clique}"


@given(st.text())
def test_any_block_name_is_a_believable_domain_or_none(name: str) -> None:
    got = block_domain(name)
    assert got == "" or (believable_domain(got) == got and len(got) <= 128)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in got)


# -- Slurm's topology/block -----------------------------------------------------------------


def test_blocks_are_read_from_scontrol_show_topology() -> None:
    blocks, unbelieved = parse_blocks(BLOCK_OUTPUT)
    assert len(blocks) == 36 and not unbelieved
    assert blocks["gb-001"] == blocks["gb-018"] == "block/nvl72-a"
    assert blocks["gb-019"] == blocks["gb-036"] == "block/nvl72-b"


def test_no_blocks_without_the_block_plugin() -> None:
    assert parse_blocks(TREE_OUTPUT) == ({}, [])
    assert parse_blocks("") == ({}, [])
    # ... and the switches are read as before from the same text.
    assert parse_topology(TREE_OUTPUT)["gpu-005"] == "leaf2"
    assert parse_topology(BLOCK_OUTPUT) == {}


def test_a_block_computectl_does_not_believe_is_left_out_and_said() -> None:
    text = (
        "BlockName=bad/name BlockIndex=0 Nodes=gb-[001-002] BlockSize=2\n"
        "BlockName=ok BlockIndex=1 Nodes=gb-[a-b] BlockSize=2\n"
        "BlockName=fine BlockIndex=2 Nodes=gb-[003-004] BlockSize=2\n"
        "BlockName=huge BlockIndex=3 Nodes=gb-[0-999999999] BlockSize=2\n"
    )
    blocks, unbelieved = parse_blocks(text)
    assert blocks == {"gb-003": "block/fine", "gb-004": "block/fine"}
    assert [name for _, name in unbelieved] == ["bad/name", "ok", "huge"]


@given(
    st.lists(
        st.one_of(
            st.text(),
            st.builds(
                "BlockName={} BlockIndex={} Nodes={} BlockSize={}".format,
                st.text(),
                st.integers(),
                st.text(alphabet="gb-[]0123456789,x"),
                st.integers(),
            ),
        ),
        max_size=8,
    )
)
def test_scontrol_output_of_any_shape_never_crashes_nor_gives_garbage(lines: list[str]) -> None:
    blocks, unbelieved = parse_blocks("\n".join(lines))
    assert all(believed(d) and d.startswith("block/") for d in blocks.values())
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in unbelieved)


# -- resolved, kept, used -------------------------------------------------------------------


def status(name: str, domain: str = "", model: str = "GB200") -> NodeStatus:
    return NodeStatus(name, "gb", model, 4, 0, False, "", 0, nvlink_domain=domain)


def node(name: str, reported: str = "", model: str = "GB200") -> Node:
    values = {"nvlink": {"nvlink_domain": reported}} if reported else {}
    health = NodeHealth(last_values=values)
    return Node(name, "gb", "r1", model, 4, Lifecycle.IN_SERVICE, T0, health=health)


def test_a_block_stands_for_the_domain_most_of_its_nodes_report() -> None:
    statuses = [status(f"gb-{i}", "block/a") for i in range(4)]
    known = {
        "gb-0": node("gb-0", DOMAIN),
        "gb-1": node("gb-1", DOMAIN),
        "gb-2": node("gb-2", OTHER),
    }
    assert resolve(statuses, known) == {f"gb-{i}": DOMAIN for i in range(4)}
    # No majority (one each): the block stays a block.
    del known["gb-1"]
    assert set(resolve(statuses, known).values()) == {"block/a"}


def test_a_block_nobody_reported_is_kept_only_for_rack_domain_models() -> None:
    statuses = [status("gb-1", "block/a"), status("h-1", "block/h", model="H100-SXM")]
    assert resolve(statuses, {}) == {"gb-1": "block/a"}


def test_a_listing_with_garbage_is_no_domain() -> None:
    assert resolve([status("gb-1", "block/"), status("gb-2", "../etc"), status("gb-3")], {}) == {}


def test_a_node_not_yet_reported_is_in_its_listed_domain() -> None:
    listed = reconcile({}, [status("gb-1", DOMAIN)], {}, "in_service", T0)
    n = listed.nodes["gb-1"]
    assert n.health.listed_domain == DOMAIN
    assert domain_of(n) == DOMAIN and ("domain", DOMAIN) in scopes_of(n)
    assert not [e for e in listed.events if e.kind == EventKind.NVLINK_DOMAIN_MISMATCH]


def test_the_nodes_own_report_wins_and_a_disagreement_is_said_once() -> None:
    known = {"gb-1": node("gb-1", DOMAIN)}
    first = reconcile(known, [status("gb-1", OTHER)], {}, "in_service", T0)
    n = first.nodes["gb-1"]
    assert domain_of(n) == DOMAIN and n.health.listed_domain == OTHER
    [ev] = [e for e in first.events if e.kind == EventKind.NVLINK_DOMAIN_MISMATCH]
    assert ev.detail == {"reported": DOMAIN, "listed": OTHER, "listed_as": OTHER}
    again = reconcile({"gb-1": n}, [status("gb-1", OTHER)], {}, "in_service", T0)
    assert not [e for e in again.events if e.kind == EventKind.NVLINK_DOMAIN_MISMATCH]
    # Relabelled right, then wrong again: said again.
    fixed = reconcile({"gb-1": again.nodes["gb-1"]}, [status("gb-1", DOMAIN)], {}, "x", T0)
    assert fixed.nodes["gb-1"].health.domain_noted == ""
    wrong = reconcile({"gb-1": fixed.nodes["gb-1"]}, [status("gb-1", OTHER)], {}, "x", T0)
    assert [e for e in wrong.events if e.kind == EventKind.NVLINK_DOMAIN_MISMATCH]


def test_a_node_in_the_wrong_block_is_told_by_its_blocks_other_nodes() -> None:
    known = {f"gb-{i}": node(f"gb-{i}", DOMAIN) for i in range(3)}
    known["gb-3"] = node("gb-3", OTHER)
    synced = reconcile(known, [status(f"gb-{i}", "block/a") for i in range(4)], {}, "x", T0)
    [ev] = [e for e in synced.events if e.kind == EventKind.NVLINK_DOMAIN_MISMATCH]
    assert ev.node == "gb-3" and ev.detail["listed_as"] == "block/a"
    assert domain_of(synced.nodes["gb-3"]) == OTHER


def test_unreported_nodes_are_judged_with_their_domain() -> None:
    """Two nodes that never reported, listed in the domain of two that fail: one unit of 4."""
    now = T0 + timedelta(minutes=1)
    failing = NodeHealth(last_values={"nvlink": {"nvlink_domain": DOMAIN}}, streaks={"nvlink": 1})
    nodes = [
        node("gb-0").evolve(health=failing, last_checked_at=now),
        node("gb-1").evolve(health=failing, last_checked_at=now),
        node("gb-2").evolve(health=NodeHealth(listed_domain=DOMAIN)),
        node("gb-3").evolve(health=NodeHealth(listed_domain=DOMAIN)),
    ]
    [fault] = domain_faults(nodes, T0)
    assert fault.members == ("gb-0", "gb-1", "gb-2", "gb-3")


def test_the_listed_domain_is_kept_and_found_by_the_domains_query(tmp_path: Path) -> None:
    assert NodeHealth.from_json(NodeHealth(listed_domain="block/a").to_json()).listed_domain
    assert "listed_domain" not in NodeHealth().to_json()
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.transaction() as tx:
            tx.add_nodes(
                [
                    node("gb-0", DOMAIN),
                    node("gb-1").evolve(health=NodeHealth(listed_domain="block/a")),
                    node("gb-2").evolve(health=NodeHealth(listed_domain="../x")),
                    node("gb-3", OTHER).evolve(
                        health=NodeHealth(
                            last_values={"nvlink": {"nvlink_domain": OTHER}},
                            listed_domain=DOMAIN,
                        )
                    ),
                    node("h-1", model="H100-SXM"),
                ]
            )
        found = {m.node: m.domain for m in members(store)}
        assert found == {"gb-0": DOMAIN, "gb-1": "block/a", "gb-3": OTHER}
    finally:
        store.close()
