"""The SDC check as the node check runs it: the state file remembers the passing checksum
per stack, the next run must repeat it, and a mismatch exits 3 (fatal)."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from health import node_check as nc
from health.simulated import (
    FaultKind,
    FleetSpec,
    SimulatedFleet,
    SimulatedProbe,
    SimulatedTelemetry,
)
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds

NODE = "gpu-001"


def run(f: SimulatedFleet, state: Path) -> tuple[int, dict[str, Any]]:
    access = lambda: nullcontext(f)  # noqa: E731
    req = nc.CheckRequest(node=NODE, state_file=state, suite="burnin", fmt="json", dcgm_level=0)
    out: list[str] = []
    code = nc.run(
        req,
        SimulatedTelemetry(access),
        Thresholds(),
        probe=lambda: SimulatedProbe(access, NODE),
        expectation=NodeExpectation(gpu_count=8, gpu_model=f.nodes[NODE].model),
        out=out.append,
        err=out.append,
    )
    return code, {r["check"]: r for r in json.loads(out[0])["results"]}


def test_runs_are_remembered_per_stack_and_must_repeat(tmp_path: Path) -> None:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=1), seed=7, now=1_767_600_000.0)
    f.set_load(NODE, [0.0] * 8)
    state = tmp_path / "state.json"
    code, by = run(f, state)
    sdc = by["sdc"]["values"]
    assert code == nc.EXIT_OK and sdc["previous_run"] == "skipped: first run on this stack"
    assert json.loads(state.read_text())["sdc"] == {sdc["stack"]: sdc["checksum"]}
    code, by = run(f, state)
    assert code == nc.EXIT_OK and by["sdc"]["values"]["previous_run"] == "matched"
    # The node's memory says another answer: this run does not repeat it.
    saved = json.loads(state.read_text())
    saved["sdc"][sdc["stack"]] = "0" * 64
    state.write_text(json.dumps(saved))
    code, by = run(f, state)
    assert code == nc.EXIT_FATAL
    assert by["sdc"]["values"]["comparison"] == "previous_run"
    assert by["burnin"]["fatal"] is True
    # A failing run is not learnt: the memory keeps what it had.
    assert json.loads(state.read_text())["sdc"][sdc["stack"]] == "0" * 64


def test_a_flipped_bit_exits_fatal(tmp_path: Path) -> None:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=1), seed=7, now=1_767_600_000.0)
    f.set_load(NODE, [0.0] * 8)
    f.inject(NODE, FaultKind.SDC_BITFLIP, gpu=6)
    code, by = run(f, tmp_path / "state.json")
    assert code == nc.EXIT_FATAL
    assert (by["sdc"]["gpus"], by["sdc"]["fatal"]) == ([6], True)
