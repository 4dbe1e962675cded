"""The SDC kernel itself on the CPU (as CI runs it; on a GPU node the same code runs on
CUDA, benchmarks/gpu_sdc.py): deterministic, sensitive to one bit, and it leaves the
process's matmul settings as it found them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from health.burnin.sdc import CPU_KERNEL, SdcKernel, chain_checksum, make_inputs, run_sdc


@pytest.fixture(scope="module")
def torch() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torch wheel without numpy beside it warns
        import torch as t

        return t


@pytest.fixture(scope="module")
def probe(torch: Any) -> Any:
    from health.burnin.torch_probe import TorchProbe

    return TorchProbe(device="cpu")


def test_same_inputs_same_bits_on_every_gpu_index_and_run(probe: Any) -> None:
    first = probe.sdc_run(0)
    assert len(first.checksums) == CPU_KERNEL.repeats
    assert len(set(first.checksums)) == 1 and len(first.checksums[0]) == 64
    again = probe.sdc_run(5)  # the CPU stands in for any GPU index
    assert again.checksums == first.checksums
    assert first.kernel == CPU_KERNEL.key
    assert first.stack.startswith("torch ") and " threads " in first.stack
    assert first.seconds > 0


def test_one_flipped_input_bit_changes_the_answer(torch: Any) -> None:
    kernel = SdcKernel(size=32, chain=3, weights=2, repeats=1)
    x, ws = make_inputs(torch, kernel)
    cpu = torch.device("cpu")
    good = chain_checksum(torch, cpu, kernel, (x, ws))
    flipped = x.clone()
    flipped.view(torch.int32)[7, 11] ^= 1 << 3
    assert chain_checksum(torch, cpu, kernel, (flipped, ws)) != good
    other = SdcKernel(size=32, chain=3, weights=2, repeats=1, seed=1)
    assert chain_checksum(torch, cpu, other, make_inputs(torch, other)) != good


def test_the_process_settings_come_back(torch: Any) -> None:
    matmul = torch.backends.cuda.matmul
    before = (
        torch.are_deterministic_algorithms_enabled(),
        matmul.allow_tf32,
        matmul.allow_bf16_reduced_precision_reduction,
        torch.get_float32_matmul_precision(),
    )
    kernel = SdcKernel(size=16, chain=2, weights=1, repeats=1)
    run_sdc(torch, torch.device("cpu"), kernel, make_inputs(torch, kernel))
    after = (
        torch.are_deterministic_algorithms_enabled(),
        matmul.allow_tf32,
        matmul.allow_bf16_reduced_precision_reduction,
        torch.get_float32_matmul_precision(),
    )
    assert after == before


def test_kernel_parameters_are_bounded() -> None:
    with pytest.raises(ValueError, match="size"):
        SdcKernel(size=4)
    with pytest.raises(ValueError, match="weights"):
        SdcKernel(chain=2, weights=3)


def test_the_device_script_runs_on_the_cpu_and_sees_a_flipped_gpu(
    torch: Any, tmp_path: Path
) -> None:
    from benchmarks.gpu_sdc import main

    assert main(["--cpu", "--out", str(tmp_path), "--runs", "1"]) == 0
    report = json.loads((tmp_path / "gpu_sdc.json").read_text())
    assert report["measure"]["bitwise_equal_everywhere"] is True
    assert report["check"]["status"] == "pass"
    assert (report["flip"]["status"], report["flip"]["gpus"]) == ("fail", [2])
