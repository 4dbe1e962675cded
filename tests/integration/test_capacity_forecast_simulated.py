"""Capacity planning on the simulated datacenter: the history is sampled once per interval
(not per sweep) and stays bounded; the forecast's figures add up to the fleet."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from compute.services.capacity_plan import Addition, plan
from compute.store import topology as kept
from compute.store.topology_models import CapacitySampleRow
from compute.testing import make_runtime

pytestmark = pytest.mark.integration

CONFIG = {
    "remediation": {"periodic_burn_in_days": 0},
    "topology": {"capacity_sample_minutes": 10.0, "capacity_history_days": 1.0},
}


def sample_times(rt: object) -> int:
    with Session(rt.store.engine) as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count(func.distinct(CapacitySampleRow.at)))) or 0)


def test_samples_once_per_interval_and_bounded(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, CONFIG, racks=4)
    try:
        assert rt.datacenter is not None
        rt.sweep()
        rt.sweep()  # same instant: no second sample
        assert sample_times(rt) == 1
        rt.datacenter.advance(300)
        rt.sweep()  # 5 minutes on: not due yet
        assert sample_times(rt) == 1
        rt.datacenter.advance(300)
        rt.sweep()
        assert sample_times(rt) == 2
        rt.datacenter.advance(2 * 86_400)
        rt.sweep()  # older than capacity_history_days: deleted with this sample's write
        assert sample_times(rt) == 1
    finally:
        rt.close()


def test_the_forecast_adds_up(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, CONFIG, racks=4)
    try:
        rt.sweep()
        rt.sweep()
        view = plan(
            rt.store,
            rt.settings.topology,
            [Addition(4, "H100-SXM", "hall-a"), Addition(2, "B200", "hall-a")],
        )
        nodes = rt.store.nodes()
        assert sum(f["installed"] for f in view["free"]) == sum(n.gpu_count for n in nodes)
        for f in view["free"]:
            assert f["allocated"] + f["free"] <= f["usable"] <= f["installed"]
        (room,) = view["rooms"]
        racks = view["racks"]
        assert room["watts"] == pytest.approx(sum(r["watts"] for r in racks), abs=0.5)
        assert room["limit_watts"] == sum(r["limit_watts"] for r in racks) == 160_000.0
        for r in racks:
            assert r["headroom_watts"] == pytest.approx(r["limit_watts"] - r["watts"], abs=0.1)
        over = {s.rack for s in kept.standings(rt.store) if s.over}
        assert {r["rack"] for r in racks if r["over_budget"]} == over
        h100, b200 = view["additions"]
        # H100-SXM nodes are measured here; no B200 is: the catalogue's figure.
        assert h100["watts_source"] == "measured" and b200["watts_source"] == "catalogue"
        assert b200["watts_per_node"] == rt.settings.topology.node_watts["B200"]
        assert h100["room_watts_after"] == pytest.approx(
            room["watts"] + 4 * h100["watts_per_node"], abs=0.5
        )
        assert h100["fits"] == (h100["headroom_after_watts"] >= 0)
        training = next(n for n in view["n_minus_one"] if n["pool"] == "training")
        assert training["largest_rack"] in {"r01", "r02", "r03"} and training["rack_gpus"] == 64
    finally:
        rt.close()
