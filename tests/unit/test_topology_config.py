"""[topology]: every reference checked at start-up, one clear error each."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from compute.config import Settings
from compute.config_topology import TopologySettings

SITE = {"name": "hel1"}
ROOM = {"name": "hall-a", "site": "hel1"}
ROW = {"name": "row-1", "room": "hall-a"}


def rack(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "room": "hall-a", "power_budget_watts": 40_000, **kw}


def topo(**kw: Any) -> dict[str, Any]:
    return {"sites": [SITE], "rooms": [ROOM], "rows": [ROW], **kw}


def error(doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as exc:
        Settings.model_validate({"topology": doc})
    return str(exc.value)


def test_a_valid_topology_places_its_nodes() -> None:
    t = TopologySettings.model_validate(
        topo(
            racks=[
                rack("r01", row="row-1", nodes="gpu-[001-002]", pdus=["pdu-a", "pdu-b"]),
                rack("r02", nodes="gpu-003", cooling_limit_watts=30_000),
            ]
        )
    )
    assert t.placement() == {"gpu-001": "r01", "gpu-002": "r01", "gpu-003": "r02"}
    assert [t.limit_watts(r) for r in t.racks] == [40_000, 30_000]


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (topo(racks=[rack("r01", room="hall-z")]), "rack 'r01' is in unknown room 'hall-z'"),
        (topo(racks=[rack("r01", row="row-9")]), "rack 'r01' is in unknown row 'row-9'"),
        ({"sites": [SITE], "rooms": [{"name": "x", "site": "nope"}]}, "unknown site 'nope'"),
        (topo(rows=[{"name": "row-1", "room": "b"}]), "row 'row-1' is in unknown room 'b'"),
        (topo(racks=[rack("r01"), rack("r01")]), "rack names must be unique: r01"),
        (topo(racks=[rack("r01", power_budget_watts=-1)]), "greater than or equal to 0"),
        (
            topo(racks=[rack("r01", nodes="gpu-[1-2]"), rack("r02", nodes="gpu-2")]),
            "node 'gpu-2' is placed in both 'r01' and 'r02'",
        ),
        (topo(racks=[rack("r01", nodes="gpu-[9-1]")]), "runs backwards"),
        (topo(racks=[rack("r01", nodes="gpu-[1-99999999]")]), "names more than"),
        (topo(racks=[rack("bad name")]), "should match pattern"),
        (topo(node_watts={"H100-SXM": 0}), "node_watts['H100-SXM']"),
        (topo(forecast_minutes=-5), "greater than or equal to 0"),
        (topo(racks=[rack("r01", power_budget_watts="40000")]), "must be a number"),
    ],
)
def test_bad_topology_is_one_clear_error(doc: dict[str, Any], says: str) -> None:
    assert says in error(doc)


@given(st.text(max_size=40))
def test_any_hostlist_either_places_or_is_refused(nodes: str) -> None:
    try:
        t = TopologySettings.model_validate(topo(racks=[rack("r01", nodes=nodes)]))
    except ValidationError:
        return
    assert set(t.placement().values()) <= {"r01"}
