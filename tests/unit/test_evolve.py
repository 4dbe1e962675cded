"""health.evolve: the copy is exactly what dataclasses.replace makes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

import pytest

from compute.domain import Node
from health.evolve import evolver
from health.policy import DrainOwner, Lifecycle, NodeHealth
from health.policy.model import Finding

AT = datetime(2026, 12, 2, tzinfo=UTC)


def _node() -> Node:
    return Node(
        "gpu-0001",
        "training",
        "r01",
        "H100-SXM",
        8,
        Lifecycle.DRAINED,
        AT,
        drain_reason="xid 79",
        drain_owner=DrainOwner.COMPUTECTL,
        health=NodeHealth(
            streaks={"ecc": 2},
            finding=Finding("xid", "GPU 3 fell off the bus", True, AT, (3,)),
            unwell=frozenset({"xid"}),
        ),
        version=7,
    )


def test_node_and_health_copies_are_replace_s() -> None:
    node = _node()
    for changes in (
        {},
        {"power_watts": 5120.5},
        {"version": 8, "state": Lifecycle.IN_SERVICE, "drain_owner": None},
        {f.name: getattr(node, f.name) for f in fields(Node)},
    ):
        copy = node.evolve(**changes)
        assert copy == replace(node, **changes)
        assert type(copy) is Node
        assert all(
            getattr(copy, f.name) is getattr(replace(node, **changes), f.name) for f in fields(Node)
        )
    health = node.health.evolve(burn_in_missed=2, streaks={})
    assert health == replace(node.health, burn_in_missed=2, streaks={})
    assert node.health.burn_in_missed == 0  # the original is untouched


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="no field 'colour'"):
        _node().evolve(colour="red")
    with pytest.raises(TypeError):
        NodeHealth().evolve(colour="red")


def test_classes_replace_does_more_for_are_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int
        b: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a < 0")

    with pytest.raises(TypeError):
        evolver(Checked)
