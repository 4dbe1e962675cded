"""Each injected fault is found by the right check; healthy GPUs give no false alarms."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from health.floors import load_floors
from health.result import CheckResult, ResultError, Status
from health.runner import run_burn_in, run_passive
from health.simulated import (
    FaultKind,
    FleetSpec,
    SimulatedFleet,
    SimulatedProbe,
    SimulatedTelemetry,
)
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds
from health.xid import Action, classify, parse_xid_line

T0 = 1_767_600_000.0


def fleet(**kw: object) -> SimulatedFleet:
    return SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=4, **kw), seed=7, now=T0)  # type: ignore[arg-type]


def expect(f: SimulatedFleet, node: str) -> NodeExpectation:
    n = f.nodes[node]
    return NodeExpectation(
        gpu_count=len(n.gpus),
        gpu_model=n.model,
        gpu_uuids=tuple(g.uuid for g in n.gpus),
        nvlinks_per_gpu=18,
        pcie_width=16,
    )


def passive(f: SimulatedFleet, node: str = "gpu-001") -> dict[str, CheckResult]:
    snap = SimulatedTelemetry(lambda: nullcontext(f)).snapshot(node, None)
    return {r.check: r for r in run_passive(snap, expect(f, node), Thresholds())}


def burnin(f: SimulatedFleet, node: str = "gpu-001") -> dict[str, CheckResult]:
    access = lambda: nullcontext(f)  # noqa: E731
    snap = SimulatedTelemetry(access).snapshot(node, None)
    return {
        r.check: r
        for r in run_burn_in(
            snap,
            expect(f, node),
            Thresholds(),
            SimulatedProbe(access, node),
            load_floors()["H100-SXM"],
        )
    }


# fault -> (check that must fail, fatal?, other checks allowed to fail too)
PASSIVE_SIGNATURES = {
    FaultKind.XID79_FELL_OFF_BUS: ("gpu_count", True, {"xid"}),
    FaultKind.XID48_DBE: ("xid", True, {"ecc"}),
    FaultKind.XID94_CONTAINED_ECC: ("ecc", False, set()),
    FaultKind.XID95_UNCONTAINED_ECC: ("xid", True, {"ecc"}),
    FaultKind.ROW_REMAP_PENDING: ("ecc", False, set()),
    FaultKind.ROW_REMAP_FAILURE: ("ecc", True, {"xid"}),
    FaultKind.NVLINK_DOWN: ("nvlink", False, {"xid"}),
    FaultKind.PCIE_X8: ("pcie", False, set()),
    FaultKind.THERMAL_THROTTLE: ("throttle", False, {"temperature"}),
    FaultKind.POWER_BRAKE: ("throttle", False, set()),
    FaultKind.IB_PORT_DOWN: ("infiniband", False, set()),
}


@pytest.mark.parametrize("kind", list(PASSIVE_SIGNATURES))
def test_each_fault_is_found_by_its_check(kind: FaultKind) -> None:
    f = fleet()
    f.set_load("gpu-001", [0.9] * 8)
    f.inject("gpu-001", kind, gpu=3)
    check, fatal, also = PASSIVE_SIGNATURES[kind]
    results = passive(f)
    assert results[check].status is Status.FAIL, results[check]
    assert results[check].fatal is fatal
    failing = {c for c, r in results.items() if r.status is Status.FAIL}
    assert failing <= {check} | also
    assert 3 in results[check].gpus or check in ("xid", "infiniband")


def test_contained_ecc_is_reported_by_the_xid_check_as_an_application_error() -> None:
    f = fleet()
    f.inject("gpu-001", FaultKind.XID94_CONTAINED_ECC, gpu=2)
    r = passive(f)["xid"]
    assert r.status is Status.WARN and "XID 94" in r.evidence and "app" in r.evidence


def test_slow_gemm_gpu_fails_burn_in_only() -> None:
    f = fleet()
    f.inject("gpu-001", FaultKind.SLOW_GEMM, gpu=5)
    assert all(r.status is Status.PASS for r in passive(f).values())
    b = burnin(f)
    assert b["gemm_bf16"].status is Status.FAIL and b["gemm_bf16"].gpus == (5,)
    assert b["gemm_bf16"].values["min_to_floor_ratio"] < 0.8
    assert b["burnin"].status is Status.FAIL


def test_low_nccl_bandwidth_fails_burn_in() -> None:
    f = fleet()
    f.inject("gpu-001", FaultKind.LOW_NCCL)
    b = burnin(f)
    assert b["nccl_allreduce"].status is Status.FAIL
    assert b["gemm_bf16"].status is Status.PASS


def test_healthy_node_passes_burn_in_with_figures_and_floors() -> None:
    b = burnin(fleet())
    assert b["burnin"].status is Status.PASS
    g = b["gemm_bf16"].values
    assert g["floor_tflops"] == 610.0 and 1.0 < float(g["min_to_floor_ratio"]) < 1.2


def test_a_reset_clears_volatile_errors_but_not_a_lost_gpu() -> None:
    f = fleet()
    f.inject("gpu-001", FaultKind.XID48_DBE, gpu=1)
    f.inject("gpu-002", FaultKind.XID79_FELL_OFF_BUS, gpu=1)
    f.reset("gpu-001")
    f.reset("gpu-002")
    assert passive(f, "gpu-001")["ecc"].status is Status.WARN  # lifetime count stays
    assert passive(f, "gpu-002")["gpu_count"].status is Status.FAIL


def test_no_false_positives_on_healthy_gpus_over_a_long_run() -> None:
    """A week of simulated load on a healthy fleet: every check passes, hourly."""
    from scheduler.simulated import ClusterSpec, SimulatedCluster

    f = SimulatedFleet(FleetSpec(racks=2, nodes_per_rack=8), seed=3, now=T0)
    nodes = {name: ("training", "H100-SXM", 8) for name in f.nodes}
    c = SimulatedCluster(
        ClusterSpec(nodes, {"training": "training"}, target_utilisation=0.9), seed=3, now=T0
    )
    tel = SimulatedTelemetry(lambda: nullcontext(f))
    seen_busy = False
    for hour in range(7 * 24):
        t = T0 + hour * 3600
        c.advance(t)
        f.advance(t)
        for name in f.nodes:
            f.set_load(name, c.utilisation(name, int(t // 60)))
            seen_busy |= any(g.utilisation > 0.9 for g in f.nodes[name].gpus)
            snap = tel.snapshot(name, None)
            for r in run_passive(snap, expect(f, name), Thresholds()):
                assert r.status is Status.PASS, (hour, r)
    assert seen_busy


@pytest.mark.parametrize(
    ("line", "bus", "code"),
    [
        (
            "[Mon Nov 24 10:12:31 2025] NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the "
            "bus.",
            "0000:3b:00",
            79,
        ),
        (
            "2025-11-24T10:12:31.123456+00:00 gpu-017 kernel: NVRM: Xid (PCI:0000:17:00): 48, "
            "pid='<unknown>', name=<unknown>, An uncorrectable double bit error (DBE) has been detected "
            "on GPU in the framebuffer at partition 6, subpartition 0.",
            "0000:17:00",
            48,
        ),
        (
            "Nov 24 10:12:31 gpu-017 kernel: [ 8123.400021] NVRM: Xid (PCI:0000:b7:00): 94, pid=2191, "
            "name=python3, Contained: SM (0x1). RST: No, D-RST: No",
            "0000:b7:00",
            94,
        ),
        (
            "[ 4411.09] NVRM: Xid (PCI:0000:ca:00): 119, pid=1044, name=nvidia-smi, Timeout after 6s of "
            "waiting for RPC response from GPU0 GSP!",
            "0000:ca:00",
            119,
        ),
    ],
)
def test_xid_lines_parse(line: str, bus: str, code: int) -> None:
    p = parse_xid_line(line)
    assert p is not None and p.pci_bus_id == bus and p.code == code


def test_xid_line_iso_timestamp_is_kept() -> None:
    p = parse_xid_line("2025-11-24T10:12:31+00:00 h kernel: NVRM: Xid (PCI:0000:17:00): 79, x")
    assert p is not None and p.at is not None and p.at.hour == 10


def test_non_xid_lines_are_ignored() -> None:
    assert parse_xid_line("NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.90.07") is None


def test_xid_table() -> None:
    assert classify(79).fatal and classify(79).action is Action.DRAIN  # type: ignore[union-attr]
    assert classify(13).action is Action.APP  # type: ignore[union-attr]
    assert classify(64).action is Action.RMA  # type: ignore[union-attr]
    assert classify(99999) is None


def test_unknown_xid_is_reported_not_ignored() -> None:
    f = fleet()
    f._xid(f.nodes["gpu-001"], f.nodes["gpu-001"].gpus[0], 4242, "mystery")
    r = passive(f)["xid"]
    assert r.status is Status.WARN and "unknown code" in r.evidence


GOOD = {
    "node": "n1",
    "check": "xid",
    "version": "1",
    "status": "pass",
    "at": "2026-01-05T08:00:00+00:00",
}


def test_result_parses() -> None:
    r = CheckResult.from_dict({**GOOD, "values": {"x": 1.5}, "gpus": [1, 2]})
    assert r.status is Status.PASS and r.gpus == (1, 2)
    assert CheckResult.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"status": "ok"}, "'status' must be one of"),
        ({"at": "yesterday"}, "not an ISO 8601"),
        ({"at": "2026-01-05T08:00:00"}, "time zone"),
        ({"check": ""}, "non-empty 'check'"),
        ({"node": "n2"}, "was posted for"),
        ({"values": {"x": [1]}}, "'values' must map"),
        ({"values": {"x": float("nan")}}, "'values' must map"),
        ({"gpus": [-1]}, "'gpus' must be"),
        ({"fatal": "yes"}, "'fatal' must be"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_bad_results_are_refused_with_a_clear_message(patch: dict, message: str) -> None:
    with pytest.raises(ResultError, match=message):
        CheckResult.from_dict({**GOOD, **patch}, node="n1")
