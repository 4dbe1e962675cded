"""Learned floors in the control plane, pure parts (compute/services/learned_floors.py,
health/floor_judging.py, floors_report.py): what counts as a passing figure, the table,
judging at ingest, the history a report reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from compute.services.floors_report import report_view
from compute.services.learned_floors import compute_table, daily_medians, passing_figures
from compute.store.floors import BurnInFigures
from health.floor_judging import judge, learned_index
from health.floor_learning import LearningRule, stack_key
from health.floors import load_floors
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
STACK = {"driver": "550.90.07", "cuda": "12.4", "torch": ""}
KEY = stack_key("550.90.07", "12.4", "")


def gemm_values(figs: list[float], judged: bool = True) -> dict[str, Any]:
    v: dict[str, Any] = {"floors_judged": judged, **STACK, "min_tflops": min(figs)}
    v.update({f"gpu{i}_tflops": f for i, f in enumerate(figs)})
    return v


def history_rows(nodes: int = 8, status: str = "pass") -> list[BurnInFigures]:
    return [
        BurnInFigures(
            f"n{n}",
            "H100-SXM",
            "gemm_bf16",
            status,
            gemm_values([680.0 + ((n * 8 + g) % 11 - 5) for g in range(8)]),
        )
        for n in range(nodes)
    ]


def table_value() -> dict[str, Any]:
    table = compute_table(history_rows(), load_floors(), LearningRule())
    rows = [
        {"model": m, "stack": s, "check": c, "learned": f.learned, "learned_floor": f.floor}
        | {"samples": f.samples, "fixed_floor": f.fixed}
        for (m, s, c), f in table.items()
    ]
    return {"rows": rows}


def result(
    check: str, status: str, values: dict[str, Any], gpus: tuple[int, ...] = ()
) -> CheckResult:
    return CheckResult("n9", check, "1", Status(status), AT, Suite.BURNIN, values=values, gpus=gpus)


def test_passing_figures() -> None:
    v = gemm_values([600.0, 700.0])
    assert passing_figures("gemm_bf16", "pass", v) == {0: 600.0, 1: 700.0}
    assert passing_figures("gemm_bf16", "fail", v) == {}
    assert passing_figures("gemm_bf16", "pass", gemm_values([1.0], judged=False)) == {}
    failed_learned = {**v, "node_verdict": "pass", "learned_floor": 650.0}
    assert passing_figures("gemm_bf16", "fail", failed_learned) == {1: 700.0}
    assert passing_figures(
        "nccl_allreduce", "pass", {"floors_judged": True, "busbw_gbps": 450}
    ) == {-1: 450.0}


def test_table_learns_per_model_stack_and_check() -> None:
    table = compute_table(history_rows(), load_floors(), LearningRule())
    f = table[("H100-SXM", KEY, "gemm_bf16")]
    assert f.learned and f.samples == 64 and f.nodes == 8
    assert 640.0 < f.floor < 680.0
    # A model without a fixed floor learns nothing; a failed result teaches nothing.
    other = [BurnInFigures("x", "Z9", "gemm_bf16", "pass", gemm_values([1.0] * 8))]
    assert compute_table(other + history_rows(status="fail"), load_floors(), LearningRule()) == {}


def test_a_slow_gpu_fails_its_check_and_the_burn_in() -> None:
    index = learned_index(table_value())
    figs = [680.0] * 8
    figs[3] = 680.0 * 0.92
    results = [
        result("gemm_bf16", "pass", gemm_values(figs)),
        result(BURNIN_SUMMARY, "pass", {"checks": 2, "checks_failed": 0}),
    ]
    out = judge("H100-SXM", results, index)
    gemm, summary = out
    assert gemm.status is Status.FAIL and gemm.gpus == (3,)
    assert "GPU 3 626 TFLOP/s (learned floor" in gemm.evidence
    assert gemm.values["node_verdict"] == "pass"
    assert summary.status is Status.FAIL and summary.gpus == (3,)
    assert summary.values["checks_failed"] == 1


def test_healthy_passes_and_records_the_floor() -> None:
    index = learned_index(table_value())
    out = judge("H100-SXM", [result("gemm_bf16", "pass", gemm_values([680.0] * 8))], index)
    assert out[0].status is Status.PASS
    assert out[0].values["learned_floor"] > 610.0


def test_not_judged_where_no_floor_is_learned_or_the_node_did_not_judge() -> None:
    index = learned_index(table_value())
    slow = gemm_values([500.0] * 8, judged=False)
    same = [result("gemm_bf16", "pass", slow)]
    assert judge("H100-SXM", same, index) == same  # a stand-in's figures: no evidence
    other_stack = [result("gemm_bf16", "pass", {**gemm_values([620.0] * 8), "driver": "999"})]
    assert judge("H100-SXM", other_stack, index) == other_stack
    assert judge("H200", other_stack, index) == other_stack
    assert judge("H100-SXM", other_stack, {}) == other_stack


@given(st.lists(st.floats(min_value=0.0, max_value=2000.0), min_size=1, max_size=32))
def test_judging_only_ever_fails_more(figs: list[float]) -> None:
    index = learned_index(table_value())
    for status in ("pass", "fail"):
        r = result("gemm_bf16", status, gemm_values(figs))
        (out,) = judge("H100-SXM", [r], index)
        if status == "fail":
            assert out == r
        floor = index[("H100-SXM", KEY, "gemm_bf16")]["learned_floor"]
        assert (out.status is Status.FAIL) == (status == "fail" or min(figs) < floor)


def test_history_and_the_report() -> None:
    table = compute_table(history_rows(), load_floors(), LearningRule())
    old = {
        "history": {
            f"H100-SXM|{KEY}|gemm_bf16": [
                [(AT - timedelta(days=45)).date().isoformat(), 1.0],
                [(AT - timedelta(days=31)).date().isoformat(), 690.0],
                [(AT - timedelta(days=8)).date().isoformat(), 685.0],
            ]
        }
    }
    hist = daily_medians(old, table, AT)
    points = hist[f"H100-SXM|{KEY}|gemm_bf16"]
    assert len(points) == 3 and points[-1][0] == AT.date().isoformat()
    value = {
        "computed_at": AT.isoformat(),
        "rows": [
            {"model": "H100-SXM", "stack": KEY, "check": "gemm_bf16", "median": points[-1][1]}
        ],
        "history": hist,
    }
    (row,) = report_view(value)["floors"]
    assert row["median_week_ago"] == 685.0
    assert row["median_month_ago"] == 690.0
    assert report_view(value, "H200")["floors"] == []
    assert report_view(None)["note"]


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                ["model", "stack", "check", "learned", "learned_floor", "fixed_floor", "samples"]
            ),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(),
                st.text(max_size=5),
                st.sampled_from(["gemm_bf16"]),
            ),
        )
    )
)
def test_a_malformed_stored_table_never_fails_an_ingest(rows: list[dict[str, Any]]) -> None:
    index = learned_index({"rows": rows})
    r = result("gemm_bf16", "pass", gemm_values([600.0] * 8))
    judge("H100-SXM", [r], index)
    assert learned_index({"rows": "nonsense"}) == {}


@given(st.text(max_size=80))
def test_the_cli_takes_only_a_model_name(text: str) -> None:
    from click.testing import CliRunner

    from compute.cli.floors import MODEL
    from compute.cli.main import cli

    if MODEL.fullmatch(text):
        return  # a name: the command runs (tests/integration)
    out = CliRunner().invoke(cli, ["floors", "report", "--model", text])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
