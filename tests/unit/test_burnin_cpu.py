"""TorchProbe on the CPU: the burn-in kernels and the 2-process gloo all-reduce run end to end.

Skipped where torch is not installed (it is not a project dependency: CI does
not download it). On a GPU node the same code runs with CUDA and NCCL.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from health.probe import ProbeError


def _torch() -> Any:
    with warnings.catch_warnings():
        # A torch wheel without numpy beside it warns on import; not this test's concern.
        warnings.simplefilter("ignore")
        return pytest.importorskip("torch", reason="torch not installed (not a dev dependency)")


@pytest.fixture(scope="module")
def probe() -> Any:
    _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from health.burnin.torch_probe import TorchProbe

        return TorchProbe(device="cpu", gemm_seconds=0.3, hbm_repeats=3)


def test_cpu_probe_does_not_judge_floors(probe: Any) -> None:
    assert probe.judges_floors is False
    probe.reset()


def test_gemm_and_hbm(probe: Any) -> None:
    assert probe.gemm_tflops(0, "bf16") > 0
    assert probe.gemm_tflops(3, "tf32") > 0  # the CPU stands in for any GPU index
    assert probe.hbm_gbps(0) > 0
    with pytest.raises(ProbeError, match="unknown GEMM dtype"):
        probe.gemm_tflops(0, "int4")


def test_gloo_allreduce_two_processes(probe: Any) -> None:
    assert probe.nccl_busbw_gbps() > 0


def test_bus_bandwidth_as_nccl_tests() -> None:
    # Pure arithmetic: runs without torch too (the module imports torch only when used).
    from health.burnin.torch_probe import bus_bandwidth, gemm_flops

    assert bus_bandwidth(100.0, 8) == pytest.approx(175.0)
    assert bus_bandwidth(100.0, 1) == 100.0
    assert gemm_flops(8192, 1) == 2 * 8192**3


def _bench() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_node_check.py"
    spec = importlib.util.spec_from_file_location("gpu_node_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_device_script_helpers() -> None:
    bench = _bench()
    assert bench.ratio(770.0, 710.0) == pytest.approx(1.0845, abs=1e-4)
    assert bench.ratio(1.0, None) is None
    assert bench.time_summary([0.3, 0.1, 0.2])["median_seconds"] == 0.2
    rows = [
        {"check": "gemm_bf16", "values": {"min_tflops": 780.0}},
        {"check": "hbm_bandwidth", "values": {"min_gbps": 4300.0}},
        {"check": "nccl_allreduce", "values": {"busbw_gbps": 450.0}},
    ]
    figures = bench.figures_from_burnin(rows)
    assert figures == {"gemm_bf16_tflops": 780.0, "hbm_gbps": 4300.0, "nccl_busbw_gbps": 450.0}
    report = {
        "burnin": {"figures": figures, "floors": {"hbm_gbps": 3850.0}, "verdict": "pass"},
        "errors": {"passive": "TelemetrySourceError: NVML unavailable"},
    }
    table = bench.markdown_table(
        ["measure", "value", "unit", "floor", "ratio"], bench.summary_rows(report)
    )
    assert "| hbm_gbps | 4300.0 | GB/s | 3850.0 | 1.117 |" in table
    assert "ERROR in passive" in table
