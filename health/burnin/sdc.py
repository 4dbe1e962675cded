"""The silent-data-corruption kernel: a known-answer GEMM chain whose output bits are hashed.

Seeded inputs go through a chain of matrix multiplications in bf16 and in fp32 (TF32 off);
the sha256 of the final outputs' bytes is the run's checksum. The check
(health/checks/sdc.py) compares it across a node's GPUs, across runs and against the fleet.

Why equal inputs give equal bits on every GPU of one model: the inputs are made on the
CPU from one seed (no device RNG, whose stream depends on the launch configuration), the
shapes and dtypes are fixed, so the math library picks the same kernel (its heuristics
depend on shape, dtype and the device: same model, same SM count) and that kernel's
reduction order is fixed. Deterministic algorithms are enforced, TF32 and reduced-precision
reductions are off, and nothing else runs on the GPU (burn-in). A GPU whose bits differ
computed something else: that is the corruption this looks for. Different software (torch,
CUDA, driver) may legitimately pick another kernel: the stack key keeps those apart.

torch is imported on first use and typed ``Any`` (as in torch_probe.py).
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from health.probe import ProbeError, SdcRun

KERNEL_VERSION = "1"
# cuBLAS is deterministic on one stream only with a fixed workspace; torch refuses
# deterministic matmuls on CUDA unless this is set (read at each call, so setting it
# before the run is enough even where the GEMM burn-in made cuBLAS handles already).
CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True, slots=True)
class SdcKernel:
    """The computation: ``chain`` n-by-n products cycling through ``weights`` matrices,
    each scaled by 1/sqrt(n) so values stay of order one (bf16 neither overflows nor
    flushes to zero), run ``repeats`` times per GPU."""

    size: int = 4096
    chain: int = 32
    weights: int = 4
    seed: int = 20_261_203
    repeats: int = 3

    def __post_init__(self) -> None:
        if not (8 <= self.size <= 32_768 and 1 <= self.chain <= 1024):
            raise ValueError("SDC kernel: size 8-32768, chain 1-1024")
        if not (1 <= self.weights <= self.chain and 1 <= self.repeats <= 100):
            raise ValueError("SDC kernel: weights 1-chain, repeats 1-100")

    @property
    def key(self) -> str:
        """Every parameter that changes the answer (the repeats do not)."""
        return (
            f"gemm-chain.v{KERNEL_VERSION}.n{self.size}.k{self.chain}"
            f".w{self.weights}.s{self.seed}.bf16+fp32"
        )


# A GPU: ~4.4 TFLOP a dtype a repeat (fp32 without TF32 dominates). The CPU stand-in in
# CI: toy sizes, the same code path.
GPU_KERNEL = SdcKernel()
CPU_KERNEL = SdcKernel(size=96, chain=6, weights=3, repeats=2)


def software_stack(torch: Any, device: Any) -> str:
    """What, besides the GPU model and driver (the check adds those), decides the bits."""
    parts = [f"torch {torch.__version__}", f"cuda {torch.version.cuda or '-'}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        major, minor = torch.cuda.get_device_capability(device)
        parts.append(f"sm {major}.{minor} x{props.multi_processor_count}")
    else:
        # The CPU's vector unit and thread count change the reduction order.
        cap = torch.backends.cpu.get_cpu_capability()
        parts.append(f"cpu {platform.machine()} {cap} threads {torch.get_num_threads()}")
    return "; ".join(parts)


@contextmanager
def deterministic(torch: Any) -> Iterator[None]:
    """Deterministic algorithms on, TF32 and reduced-precision reductions off, for the
    block; the process's settings come back afterwards (the GEMM burn-in wants TF32)."""
    matmul = torch.backends.cuda.matmul
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        matmul.allow_bf16_reduced_precision_reduction,
        torch.get_float32_matmul_precision(),
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    try:
        torch.use_deterministic_algorithms(True)
        matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        matmul.allow_bf16_reduced_precision_reduction = False
        torch.set_float32_matmul_precision("highest")
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0])
        matmul.allow_tf32 = saved[1]
        torch.backends.cudnn.allow_tf32 = saved[2]
        matmul.allow_bf16_reduced_precision_reduction = saved[3]
        torch.set_float32_matmul_precision(saved[4])


def make_inputs(torch: Any, kernel: SdcKernel) -> tuple[Any, tuple[Any, ...]]:
    """The seeded inputs, on the CPU in fp32 (the same bits wherever they go next)."""
    gen = torch.Generator(device="cpu").manual_seed(kernel.seed)
    n = kernel.size
    x = torch.randn(n, n, generator=gen, dtype=torch.float32)
    scale = 1.0 / math.sqrt(n)
    ws = tuple(
        torch.randn(n, n, generator=gen, dtype=torch.float32) * scale for _ in range(kernel.weights)
    )
    return x, ws


def output_bytes(torch: Any, t: Any) -> bytes:
    """The tensor's bits as stored (bf16 as its two bytes, not converted)."""
    return bytes(t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())


def chain_checksum(
    torch: Any, device: Any, kernel: SdcKernel, inputs: tuple[Any, tuple[Any, ...]]
) -> str:
    """One run: both dtypes' chains on ``device``, the sha256 of their outputs' bytes."""
    x0, ws = inputs
    digest = hashlib.sha256()
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        x = x0.to(device=device, dtype=dtype)
        w = [m.to(device=device, dtype=dtype) for m in ws]
        for i in range(kernel.chain):
            x = torch.matmul(x, w[i % len(w)])
        if not bool(torch.isfinite(x).all()):
            raise ProbeError(f"SDC chain ({name}) produced non-finite values")
        digest.update(name.encode())
        digest.update(output_bytes(torch, x))
    return digest.hexdigest()


def run_sdc(torch: Any, device: Any, kernel: SdcKernel, inputs: tuple[Any, Any]) -> SdcRun:
    """``kernel.repeats`` runs on ``device`` (a CUDA device made current by the caller)."""
    t0 = time.perf_counter()
    with deterministic(torch):
        sums = tuple(chain_checksum(torch, device, kernel, inputs) for _ in range(kernel.repeats))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return SdcRun(
        checksums=sums,
        stack=software_stack(torch, device),
        kernel=kernel.key,
        seconds=time.perf_counter() - t0,
    )
