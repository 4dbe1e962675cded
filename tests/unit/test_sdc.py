"""The SDC check: a simulated GPU with one flipped output bit is caught, fatally, with the
evidence kept; each comparison (repeats, across GPUs, across runs, the fleet's reference)
is judged or skipped as documented (docs/sdc.md)."""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from health.checks.base import CheckContext
from health.checks.sdc import SdcCheck, SdcReference, stack_key
from health.floors import load_floors
from health.node_check import NodeState, sdc_memory
from health.probe import ProbeError, SdcRun
from health.result import CheckResult, Status, Suite
from health.runner import run_burn_in
from health.simulated import (
    FaultKind,
    FleetSpec,
    SimulatedFleet,
    SimulatedProbe,
    SimulatedTelemetry,
)
from health.simulated.faults import FAULTS
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds

T0 = 1_767_600_000.0
NODE = "gpu-001"


def fleet() -> SimulatedFleet:
    return SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=2), seed=7, now=T0)


def expect(f: SimulatedFleet) -> NodeExpectation:
    n = f.nodes[NODE]
    return NodeExpectation(gpu_count=len(n.gpus), gpu_model=n.model)


def run_sdc(f: SimulatedFleet, check: SdcCheck | None = None) -> CheckResult:
    access = lambda: nullcontext(f)  # noqa: E731
    ctx = CheckContext(
        SimulatedTelemetry(access).snapshot(NODE, None),
        expect(f),
        probe=SimulatedProbe(access, NODE),
    )
    return (check or SdcCheck()).run(ctx)


def test_healthy_gpus_agree() -> None:
    r = run_sdc(fleet())
    assert (r.status, r.fatal, r.check, r.suite) == (Status.PASS, False, "sdc", Suite.BURNIN)
    assert r.evidence == "all 8 GPU(s) agree"
    assert r.values["cross_gpu"] == "equal"
    assert r.values["previous_run"] == "skipped: first run on this stack"
    assert r.values["fleet_reference"] == "skipped: not asked (no control plane)"
    assert len(str(r.values["checksum"])) == 64 and len(str(r.values["stack"])) == 16


def test_one_flipped_bit_on_one_gpu_is_caught_fatally_with_its_evidence() -> None:
    f = fleet()
    good = run_sdc(f).values["checksum"]
    f.inject(NODE, FaultKind.SDC_BITFLIP, gpu=3)
    r = run_sdc(f)
    assert (r.status, r.fatal, r.gpus) == (Status.FAIL, True, (3,))
    assert r.values["comparison"] == "cross_gpu" and r.values["gpu"] == 3
    assert r.values["expected"] == good and r.values["got"] != good
    assert r.values["gpu3_checksum"] == r.values["got"]
    assert r.values["checksum"] == good  # the node's answer: the other seven's
    assert r.evidence.startswith("GPU 3 answered ")
    assert "the other 7 " in r.evidence


def test_the_burn_in_summary_fails_fatally_on_sdc() -> None:
    f = fleet()
    f.inject(NODE, FaultKind.SDC_BITFLIP, gpu=5)
    access = lambda: nullcontext(f)  # noqa: E731
    results = run_burn_in(
        SimulatedTelemetry(access).snapshot(NODE, None),
        expect(f),
        Thresholds(),
        SimulatedProbe(access, NODE),
        load_floors()[f.nodes[NODE].model],
    )
    by = {r.check: r for r in results}
    assert by["sdc"].fatal and by["sdc"].gpus == (5,)
    summary = by["burnin"]
    assert (summary.status, summary.fatal, summary.gpus) == (Status.FAIL, True, (5,))
    # Nothing else sees it: the output is wrong, not slow and not erroring.
    assert [r.check for r in results if r.failed] == ["sdc", "burnin"]


def test_a_repair_clears_the_fault() -> None:
    f = fleet()
    f.inject(NODE, FaultKind.SDC_BITFLIP, gpu=1)
    f.repair(NODE)
    assert run_sdc(f).status is Status.PASS


def test_previous_run_on_the_same_stack_must_repeat() -> None:
    f = fleet()
    first = run_sdc(f)
    key = str(first.values["stack"])
    assert run_sdc(f, SdcCheck({key: str(first.values["checksum"])})).values["previous_run"] == (
        "matched"
    )
    r = run_sdc(f, SdcCheck({key: "0" * 64}))
    assert (r.status, r.fatal) == (Status.FAIL, True)
    assert r.values["comparison"] == "previous_run"
    assert (r.values["expected"], r.values["got"]) == ("0" * 64, first.values["checksum"])
    # Another stack's memory is not this one's.
    assert run_sdc(f, SdcCheck({"another": "0" * 64})).status is Status.PASS


def test_the_fleet_reference() -> None:
    f = fleet()
    good = str(run_sdc(f).values["checksum"])
    asked: list[tuple[str, str]] = []

    def ref(checksum: str | None) -> SdcCheck:
        def lookup(model: str, stack: str) -> SdcReference | None:
            asked.append((model, stack))
            return None if checksum is None else SdcReference(checksum, 12)

        return SdcCheck(reference=lookup)

    assert run_sdc(f, ref(good)).values["fleet_reference"] == "matched"
    assert asked[0][0] == f.nodes[NODE].model and len(asked[0][1]) == 16
    none = run_sdc(f, ref(None))
    assert none.status is Status.PASS
    assert none.values["fleet_reference"] == "skipped: no reference yet for this model and stack"
    bad = run_sdc(f, ref("f" * 64))
    assert (bad.status, bad.fatal, bad.gpus) == (Status.FAIL, True, tuple(range(8)))
    assert bad.values["comparison"] == "fleet_reference"
    assert (bad.values["expected"], bad.values["reference_nodes"]) == ("f" * 64, 12)

    def unreachable(model: str, stack: str) -> SdcReference | None:
        raise LookupError("connection refused")

    r = run_sdc(f, SdcCheck(reference=unreachable))
    assert r.status is Status.PASS
    assert r.values["fleet_reference"] == "skipped: could not be read: connection refused"


class FakeProbe:
    """A probe whose GPUs answer as told."""

    judges_floors = True

    def __init__(self, answers: dict[int, tuple[str, ...]]) -> None:
        self.answers = answers

    def reset(self) -> None:
        return None

    def gemm_tflops(self, gpu: int, dtype: str) -> float:
        raise ProbeError("not here")

    def hbm_gbps(self, gpu: int) -> float:
        raise ProbeError("not here")

    def nccl_busbw_gbps(self) -> float:
        raise ProbeError("not here")

    def sdc_run(self, gpu: int) -> SdcRun:
        if gpu not in self.answers:
            raise ProbeError(f"GPU {gpu} not visible")
        return SdcRun(self.answers[gpu], "fake stack", "fake kernel", 0.5)


def fake_ctx(f: SimulatedFleet, answers: dict[int, tuple[str, ...]], gpus: int) -> CheckContext:
    snap = SimulatedTelemetry(lambda: nullcontext(f)).snapshot(NODE, None)
    snap = dataclasses.replace(snap, gpus=snap.gpus[:gpus])
    return CheckContext(snap, expect(f), probe=FakeProbe(answers))


A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_a_gpu_whose_repeats_differ_is_unstable() -> None:
    r = SdcCheck().run(fake_ctx(fleet(), {0: (A, A), 1: (A, B), 2: (A, A)}, 3))
    assert (r.status, r.fatal, r.gpus) == (Status.FAIL, True, (1,))
    assert r.values["comparison"] == "repeats"
    assert r.evidence.startswith("GPU 1 gave 2 different answers in 2 runs")


def test_no_majority_makes_every_gpu_a_suspect_and_the_reference_decides() -> None:
    f = fleet()
    r = SdcCheck().run(fake_ctx(f, {0: (A,), 1: (B,)}, 2))
    assert (r.status, r.gpus) == (Status.FAIL, (0, 1))
    assert "no majority" in r.evidence
    assert r.values["fleet_reference"] == "skipped: no node consensus"
    three = SdcCheck().run(fake_ctx(f, {0: (A,), 1: (B,), 2: (C,)}, 3))
    assert three.gpus == (0, 1, 2)


def test_one_gpu_has_nothing_to_compare_across() -> None:
    r = SdcCheck().run(fake_ctx(fleet(), {0: (A, A)}, 1))
    assert r.status is Status.PASS and r.values["cross_gpu"] == "skipped: one GPU"
    assert r.values["checksum"] == A


def test_a_kernel_that_cannot_run_is_no_evidence() -> None:
    r = SdcCheck().run(fake_ctx(fleet(), {0: (A,)}, 2))
    assert (r.status, r.fatal) == (Status.WARN, False)
    assert r.evidence.startswith("skipped: the SDC kernel did not run: GPU 1 not visible")


def test_the_stack_key_names_the_model_driver_and_kernel() -> None:
    r = SdcCheck().run(fake_ctx(fleet(), {0: (A,), 1: (A,)}, 2))
    text = str(r.values["stack_text"])
    assert text.startswith("fake stack; model ") and text.endswith("kernel fake kernel")
    assert r.values["stack"] == stack_key(text)


def result(status: Status, stack: str, checksum: str) -> CheckResult:
    return CheckResult(
        NODE,
        "sdc",
        "1",
        status,
        datetime(2026, 12, 3, tzinfo=UTC),
        Suite.BURNIN,
        status is Status.FAIL,
        values={"stack": stack, "checksum": checksum},
    )


def test_the_state_remembers_passing_checksums_per_stack(tmp_path: Path) -> None:
    assert sdc_memory({}, [result(Status.FAIL, "s1", A)]) == {}
    mem = sdc_memory({"s0": B}, [result(Status.PASS, "s1", A)])
    assert mem == {"s0": B, "s1": A}
    many = {f"s{i}": A for i in range(20)}
    kept = sdc_memory(many, [result(Status.PASS, "s3", C)])
    assert len(kept) == 8 and list(kept)[-1] == "s3" and kept["s3"] == C
    path = tmp_path / "state.json"
    NodeState(None, {}, {"s0": B}).save(path, [result(Status.PASS, "s1", A)])
    assert NodeState.load(path).sdc == {"s0": B, "s1": A}


def test_sdc_is_never_drawn_at_random_by_default() -> None:
    assert FAULTS[FaultKind.SDC_BITFLIP].weight == 0.0


def test_a_wide_node_with_every_gpu_suspect_still_posts_a_valid_result() -> None:
    f = fleet()
    snap = SimulatedTelemetry(lambda: nullcontext(f)).snapshot(NODE, None)
    g = snap.gpus[0]
    wide = dataclasses.replace(snap, gpus=tuple(dataclasses.replace(g, index=i) for i in range(32)))
    # 17 GPUs agree, 15 each answer otherwise, twice: the longest evidence a node makes.
    answers = {i: (A, A) if i < 17 else (f"{i:064x}", A) for i in range(32)}
    r = SdcCheck(reference=lambda m, s: SdcReference(C, 3)).run(
        CheckContext(wide, expect(f), probe=FakeProbe(answers))
    )
    assert r.status is Status.FAIL and len(r.gpus) == 32
    assert len(r.evidence) == 2000 and r.evidence.endswith("…")
    back = CheckResult.from_dict(r.to_dict(), node=NODE)
    assert back.values == r.values
