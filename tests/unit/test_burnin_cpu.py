"""The burn-in kernels on the CPU: GEMM, copy, the 2-process gloo all-reduce and the
two-node pair all-reduce run end to end.

torch comes with the `burnin` extra, which `make test` installs: these tests
fail rather than skip without it, so CI always runs the kernels' code paths.
On a GPU node the same code runs with CUDA and NCCL.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from health.probe import ProbeError


def load_torch() -> Any:
    with warnings.catch_warnings():
        # A torch wheel without numpy beside it warns on import; not this test's concern.
        warnings.simplefilter("ignore")
        import torch

        return torch


@pytest.fixture(scope="module")
def probe() -> Any:
    load_torch()
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


def _pair_probe(node: str, port: int, *extra: str) -> list[str]:
    cli = Path(sys.executable).parent / "computectl"
    peers = "gpu-a@127.0.0.1,gpu-b@127.0.0.1"
    return [str(cli), "node", "pair-probe", "--peers", peers, "--port", str(port),
            "--node", node, "--device", "cpu", *extra]  # fmt: skip


def test_pair_probe_two_nodes_on_cpu(tmp_path: Path) -> None:
    """Both sides of a pair as separate `computectl node pair-probe` processes, as srun or a
    Job starts them; only the first node prints (and writes) the result."""
    from health.burnin.pair import parse_result
    from health.burnin.torch_probe import free_port

    port = free_port()
    sides = {
        node: subprocess.Popen(
            _pair_probe(
                node,
                port,
                "--bytes",
                str(1 << 20),
                "--timeout",
                "60",
                "--result-file",
                str(tmp_path / f"{node}.json"),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in ("gpu-b", "gpu-a")
    }
    done = {node: p.communicate(timeout=180) for node, p in sides.items()}
    assert {n: p.returncode for n, p in sides.items()} == {"gpu-a": 0, "gpu-b": 0}, done
    assert done["gpu-b"][0] == "" and not (tmp_path / "gpu-b.json").exists()
    first = parse_result(done["gpu-a"][0])
    assert first is not None
    assert first["nodes"] == ["gpu-a", "gpu-b"]
    assert first["ranks"] == 2 and first["backend"] == "gloo"
    assert first["busbw_gbps"] > 0
    assert parse_result((tmp_path / "gpu-a.json").read_text()) == first


def test_pair_probe_without_its_peer_fails_in_one_line() -> None:
    from health.burnin.torch_probe import free_port

    proc = subprocess.run(
        _pair_probe("gpu-a", free_port(), "--timeout", "2"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: pair test failed:"), proc.stderr


def test_pair_probe_refuses_a_node_outside_the_pair() -> None:
    from health.burnin.pair import PairProbe, parse_peers

    peers = parse_peers("a@10.0.0.1,b")
    assert peers[1].address == "b"
    with pytest.raises(ProbeError, match="not one of the pair"):
        PairProbe(peers, "c", 29500).rank()
    with pytest.raises(ProbeError, match="two different nodes"):
        parse_peers("a,a")
    with pytest.raises(ProbeError, match="needs a node name"):
        parse_peers("@1.2.3.4,b")


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
