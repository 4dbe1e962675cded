"""Learned floors on the node (health/floor_judging.py): the control plane's answer is checked
whole against the node's own fixed floor and the bounds learning keeps; the node judges its
figures exactly as ingest does; whatever goes wrong, the fixed floors judge and say why."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compute.runtime import Runtime
from compute.services.learned_floors import compute_table
from compute.store import floors as kept
from compute.testing import make_runtime
from health import node_check as nc
from health.floor_judging import (
    CHECKS,
    ROUNDING,
    FloorAnswerError,
    node_verdict,
    parse_node_view,
)
from health.floor_learning import MAX_RAISE_LIMIT, LearningRule, stack_key
from health.floors import load_floors
from health.reporting import fetch_learned_floors
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite
from health.simulated import FleetSpec, SimulatedFleet, SimulatedProbe, SimulatedTelemetry
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds
from tests.unit.test_learned_floors import AT, STACK, gemm_values, history_rows

MODEL = "H100-SXM"
FIXED = load_floors()[MODEL]
KEY = stack_key(STACK["driver"], STACK["cuda"], STACK["torch"])


def answer(floor: object = 650.0, **over: Any) -> dict[str, Any]:
    row = {"check": "gemm_bf16", "learned_floor": floor, "fixed_floor": 610.0, "samples": 64}
    return {"model": MODEL, "stack": KEY, "max_raise": 1.25, "floors": [row], **over}


def gemm(figs: list[float], status: str = "pass", judged: bool = True) -> CheckResult:
    values = gemm_values(figs, judged)
    return CheckResult("n9", "gemm_bf16", "1", Status(status), AT, Suite.BURNIN, values=values)


def summary() -> CheckResult:
    values = {"checks": 2, "checks_failed": 0}
    return CheckResult("n9", BURNIN_SUMMARY, "1", Status.PASS, AT, Suite.BURNIN, values=values)


# -- the answer is hostile -----------------------------------------------------------------


def test_a_sound_answer_is_taken_as_ingest_takes_the_stored_row() -> None:
    (row,) = parse_node_view(answer(), MODEL, KEY, FIXED).values()
    assert row["learned_floor"] == 650.0 and row["samples"] == 64
    assert row["fixed_floor"] == FIXED.gemm_bf16_tflops  # the node's own, not the answer's
    assert parse_node_view(answer(floors=[]), MODEL, KEY, FIXED) == {}


@pytest.mark.parametrize(
    "bad",
    [
        answer(600.0),  # under the fixed floor (610)
        answer(610.0 * 1.25 + 0.01),  # over the fixed floor times max_raise
        answer(max_raise=MAX_RAISE_LIMIT + 0.5, floors=[{**answer()["floors"][0]}]),
        answer(float("nan")),
        answer(float("inf")),
        answer(10**400),
        answer(True),
        answer("650"),
        answer(model="H200"),
        answer(stack="driver=1 cuda=2 torch=3"),
        answer(max_raise=None),
        answer(floors=[{"check": "gemm_bf16", "learned_floor": 650.0, "samples": 0}]),
        answer(floors=[{"check": "gemm_bf16", "learned_floor": 650.0, "samples": 1.5}]),
        answer(floors=[{"check": "xid", "learned_floor": 650.0, "samples": 3}]),
        answer(floors=[answer()["floors"][0], answer()["floors"][0]]),
        answer(floors=[answer()["floors"][0]] * 4),
        answer(floors={"gemm_bf16": 650.0}),
        answer(floors=["gemm_bf16"]),
        [answer()],
        None,
    ],
)
def test_an_unsound_answer_is_refused_whole(bad: object) -> None:
    with pytest.raises(FloorAnswerError):
        parse_node_view(bad, MODEL, KEY, FIXED)


numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**400), 10**400)
    | st.floats(500.0, 900.0)
    | st.booleans()
    | st.none()
    | st.text(max_size=5)
)
rows = st.fixed_dictionaries(
    {
        "check": st.sampled_from([*CHECKS, "xid", ""]),
        "learned_floor": numbers,
        "samples": st.integers(-2, 10**13) | numbers,
    },
    optional={"fixed_floor": numbers, "extra": numbers},
)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids),
    max_leaves=8,
)
answers = json_like | st.fixed_dictionaries(
    {
        "model": st.sampled_from([MODEL, "H200", None]),
        "stack": st.sampled_from([KEY, "", 3]),
        "max_raise": numbers | st.floats(0.5, 4.0),
        "floors": st.lists(rows, max_size=4) | json_like,
    }
)


@given(answers)
def test_any_answer_is_refused_or_bounded_as_learning_bounds_it(raw: object) -> None:
    try:
        got = parse_node_view(raw, MODEL, KEY, FIXED)
    except FloorAnswerError:
        return
    assert isinstance(raw, dict)
    for (model, stack, check), row in got.items():
        own = float(getattr(FIXED, CHECKS[check].fixed_attr))
        floor = row["learned_floor"]
        assert (model, stack) == (MODEL, KEY) and row["fixed_floor"] == own
        assert math.isfinite(floor) and own <= floor <= own * MAX_RAISE_LIMIT + ROUNDING
        assert floor <= own * float(raw["max_raise"]) + ROUNDING
        assert isinstance(row["samples"], int) and row["samples"] >= 1


@given(answers, st.lists(st.floats(0.0, 2000.0), min_size=1, max_size=8))
def test_any_answer_never_fails_the_check_nor_passes_a_figure_under_the_fixed_floor(
    raw: object, figs: list[float]
) -> None:
    results = [gemm(figs), summary()]
    out = node_verdict(MODEL, results, FIXED, lambda _m, _s: raw)
    assert [r.check for r in out] == [r.check for r in results]
    # A learned floor is never below the fixed floor nor above its ceiling: the answer may
    # fail a figure the fixed floor passed, never one above the ceiling.
    if min(figs) >= FIXED.gemm_bf16_tflops * MAX_RAISE_LIMIT + ROUNDING:
        assert out[0].status is Status.PASS
    for r in out:
        CheckResult.from_dict(r.to_dict())  # what the node posts, the control plane takes


# -- one rule: the node judges as ingest judges ------------------------------------------------


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path_factory.mktemp("floors"))
    table = compute_table(history_rows(), load_floors(), LearningRule())
    learned = [
        {"model": m, "stack": s, "check": c, "learned": f.learned, "learned_floor": f.floor}
        | {"samples": f.samples, "fixed_floor": f.fixed}
        for (m, s, c), f in table.items()
    ]
    value = {"computed_at": AT.isoformat(), "rule": {"max_raise": 1.25}, "rows": learned}
    assert kept.replace_table(runtime.store, None, value)
    yield runtime
    runtime.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 900.0), min_size=1, max_size=8),
    st.sampled_from(["pass", "fail"]),
    st.booleans(),
)
def test_the_node_judges_as_ingest_judges(
    rt: Runtime, figs: list[float], status: str, judged: bool
) -> None:
    results = [gemm(figs, status, judged), summary()]
    served = rt.ingest.floors.for_node
    on_node = node_verdict(MODEL, results, FIXED, lambda m, s: json.loads(json.dumps(served(m, s))))
    at_ingest = rt.ingest.floors.judge(MODEL, results)
    assert on_node == at_ingest
    # Ingest judging a report the node judged changes nothing: one verdict.
    assert rt.ingest.floors.judge(MODEL, on_node) == on_node


def test_the_node_is_served_its_model_and_stack_only(rt: Runtime) -> None:
    view = rt.ingest.floors.for_node(MODEL, KEY)
    assert [r["check"] for r in view["floors"]] == ["gemm_bf16"] and view["max_raise"] == 1.25
    assert rt.ingest.floors.for_node(MODEL, "driver=- cuda=- torch=-")["floors"] == []
    assert rt.ingest.floors.for_node("H200", KEY)["floors"] == []


# -- fallback ----------------------------------------------------------------------------------


def test_no_answer_or_a_bad_one_leaves_the_fixed_floors_and_says_why() -> None:
    slow = [600.0 * 1.07] * 8  # 642: over the fixed floor (610), under a learned 650
    results = [gemm(slow), summary()]

    def down(_m: str, _s: str) -> object:
        raise LookupError("connection refused")

    for lookup, why in (
        (down, "connection refused"),
        (lambda _m, _s: answer(600.0), "not a number from the fixed floor 610"),
        (lambda _m, _s: "<html>", "not the learned floors"),
    ):
        out = node_verdict(MODEL, results, FIXED, lookup)
        assert [r.status for r in out] == [Status.PASS, Status.PASS]
        assert out[0].evidence.startswith("learned floors unavailable: ") and why in out[0].evidence
        assert out[1] == results[1]
    assert node_verdict(MODEL, results, FIXED, lambda _m, _s: answer())[0].failed
    # No fixed floor here: no bound to check an answer by.
    assert "no fixed floor" in node_verdict("Z9", results, None, down)[0].evidence
    # Nothing the node judged (a stand-in, a passive run): nothing asked, nothing said.
    standin = [gemm(slow, judged=False), summary()]
    assert node_verdict(MODEL, standin, FIXED, down) == standin


class Stub(BaseHTTPRequestHandler):
    """A control plane that answers every GET with ``body`` and takes every POST."""

    body = b"{}"
    seen: list[str] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        ours = self.path.startswith("/api/v1/floors/learned")
        self.send_response(200 if ours else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body if ours else b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(202)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_over_http(stub: str) -> None:
    Stub.body = json.dumps(answer()).encode()
    assert fetch_learned_floors(stub, MODEL, KEY, token="t") == answer()
    assert Stub.seen[-1] == (
        "/api/v1/floors/learned?model=H100-SXM&stack=driver%3D550.90.07+cuda%3D12.4+torch%3D-"
    )
    Stub.body = b"\xff not json"
    with pytest.raises(LookupError, match="not JSON"):
        fetch_learned_floors(stub, MODEL, KEY)
    with pytest.raises(LookupError):
        fetch_learned_floors("http://127.0.0.1:9", MODEL, KEY, timeout=2)


def node_check(url: str, state: Path, slow: float) -> tuple[int, dict[str, Any]]:
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=1), seed=7, now=1_767_600_000.0)
    node = "gpu-001"
    f.set_load(node, [0.0] * 8)
    f.nodes[node].gpus[3].gemm_factor = slow
    access = lambda: nullcontext(f)  # noqa: E731
    req = nc.CheckRequest(
        node=node,
        state_file=state,
        suite="burnin",
        fmt="json",
        report_url=url,
        token="t",
        dcgm_level=0,
        power=False,
    )
    out: list[str] = []
    code = nc.run(
        req,
        SimulatedTelemetry(access),
        Thresholds(),
        probe=lambda: SimulatedProbe(access, node),
        expectation=NodeExpectation(gpu_count=8, gpu_model=f.nodes[node].model),
        out=out.append,
        err=out.append,
    )
    return code, {r["check"]: r for r in json.loads(out[0])["results"]}


def test_the_exit_code_is_the_learned_verdict_or_the_fixed_one_without_it(
    stub: str, tmp_path: Path
) -> None:
    # KEY is the simulated node's stack (its probe names no torch).
    Stub.body = json.dumps(answer(650.0)).encode()
    code, by = node_check(stub, tmp_path / "s.json", 0.92)
    gemm_r = by["gemm_bf16"]
    assert code == nc.EXIT_FAILED and gemm_r["status"] == "fail" and gemm_r["gpus"] == [3]
    assert "learned floor 650" in gemm_r["evidence"]
    assert gemm_r["values"]["node_verdict"] == "pass"
    assert by[BURNIN_SUMMARY]["status"] == "fail"
    # A hostile answer: the fixed floors, and the evidence says so.
    Stub.body = json.dumps(answer(10_000.0)).encode()
    code, by = node_check(stub, tmp_path / "s.json", 0.92)
    assert code == nc.EXIT_OK and by["gemm_bf16"]["status"] == "pass"
    assert by["gemm_bf16"]["evidence"].startswith("learned floors unavailable: ")
    # Out of reach: the check passes on its fixed floors; only the report failed (exit 4).
    code, by = node_check("http://127.0.0.1:9", tmp_path / "s.json", 0.92)
    assert code == nc.EXIT_REPORT_FAILED and by[BURNIN_SUMMARY]["status"] == "pass"
    assert by["gemm_bf16"]["evidence"].startswith("learned floors unavailable: ")


@given(st.text(max_size=400))
def test_whatever_the_reason_the_results_stay_postable(why: str) -> None:
    def down(_m: str, _s: str) -> object:
        raise LookupError(why)

    out = node_verdict(MODEL, [gemm([680.0] * 8), summary()], FIXED, down)
    assert out[0].status is Status.PASS
    CheckResult.from_dict(out[0].to_dict())
    assert len(out[0].evidence) <= len("learned floors unavailable: ") + 6 * 200  # \u202e
