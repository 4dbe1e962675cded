"""Burn-in measurements with PyTorch: sustained GEMM, HBM copy bandwidth, NCCL all-reduce.

Runs only on a drained node (nothing else on the GPUs). Without CUDA it runs
the same kernels on the CPU at toy sizes, so the code path is exercised in
CI; such figures are not judged against floors (``judges_floors`` False).

torch is imported on first use, never at module import, and is typed ``Any``
here so mypy gives the same answer with or without torch installed.
"""

from __future__ import annotations

import statistics
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from health.burnin.allreduce import (
    GIB,
    MIB,
    AllReduceGroup,
    bus_bandwidth,
    free_port,
    load_torch,
    run_allreduce,
)
from health.burnin.sdc import CPU_KERNEL, GPU_KERNEL, SdcKernel, make_inputs, run_sdc
from health.probe import ProbeError, SdcRun

# The all-reduce's helpers, where the burn-in tests have always found them.
__all__ = ["TorchProbe", "bus_bandwidth", "free_port", "gemm_flops"]

_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "tf32": "float32", "fp32": "float32"}


def gemm_flops(n: int, iterations: int) -> float:
    """Floating-point operations of ``iterations`` square n-by-n matmuls (a multiply-add is 2)."""
    return 2.0 * n**3 * iterations


class TorchProbe:
    """ActiveProbe on the local GPUs (or the CPU, as a stand-in, where there is no CUDA).

    Sizes and durations default to the burn-in's (GPU) or to a few seconds in
    all (CPU); each can be set for shorter or longer runs.
    """

    def __init__(
        self,
        *,
        device: str | None = None,
        gemm_size: int | None = None,
        gemm_seconds: float | None = None,
        hbm_bytes: int | None = None,
        hbm_repeats: int | None = None,
        allreduce_bytes: int | None = None,
        allreduce_ranks: int | None = None,
        allreduce_timeout_seconds: float = 300.0,
        sdc_kernel: SdcKernel | None = None,
    ) -> None:
        torch = load_torch()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cuda", "cpu"):
            raise ProbeError(f"unknown device {device!r} (cuda or cpu)")
        if device == "cuda" and not torch.cuda.is_available():
            raise ProbeError("CUDA is not available to PyTorch (driver, or a CPU-only build)")
        self.device = device
        gpu = device == "cuda"
        self.judges_floors = gpu
        self.gemm_size = gemm_size or (8192 if gpu else 512)
        self.gemm_seconds = gemm_seconds if gemm_seconds is not None else (10.0 if gpu else 0.5)
        self.hbm_bytes = hbm_bytes or (4 * GIB if gpu else 64 * MIB)
        self.hbm_repeats = hbm_repeats or (20 if gpu else 5)
        self.allreduce_bytes = allreduce_bytes or (GIB if gpu else 16 * MIB)
        self.allreduce_ranks = allreduce_ranks or (torch.cuda.device_count() if gpu else 2)
        self.allreduce_timeout_seconds = allreduce_timeout_seconds
        self.sdc_kernel = sdc_kernel or (GPU_KERNEL if gpu else CPU_KERNEL)
        # The SDC inputs, made once on the CPU and copied to each GPU in turn.
        self._sdc_inputs: tuple[Any, Any] | None = None

    # -- helpers -----------------------------------------------------------

    def _dev(self, torch: Any, gpu: int) -> Any:
        if self.device == "cpu":
            # The CPU stands in for every GPU index the suite asks about.
            return torch.device("cpu")
        count = torch.cuda.device_count()
        if not 0 <= gpu < count:
            raise ProbeError(f"GPU {gpu} not visible to CUDA ({count} visible)")
        return torch.device("cuda", gpu)

    def _on(self, torch: Any, dev: Any) -> AbstractContextManager[Any]:
        """Make ``dev`` the current CUDA device: events record on the current device's stream,
        so without this every GPU but 0 would be timed on GPU 0's stream."""
        return torch.cuda.device(dev) if self.device == "cuda" else nullcontext()

    def _sync(self, torch: Any, dev: Any) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize(dev)

    def _release(self, torch: Any) -> None:
        if self.device == "cuda":
            torch.cuda.empty_cache()

    # -- ActiveProbe -------------------------------------------------------

    def reset(self) -> None:
        """Return cached GPU memory, so the suite starts from an empty allocator.

        A real GPU reset (``nvidia-smi -r``, clearing volatile ECC and XID state)
        needs every process off the GPU, this one included: the operator's
        tooling does it on the drained node before burn-in, not this probe.
        """
        torch = load_torch()
        if self.device == "cuda":
            try:
                for i in range(torch.cuda.device_count()):
                    with torch.cuda.device(i):
                        torch.cuda.synchronize()
                torch.cuda.empty_cache()
            except RuntimeError as exc:
                raise ProbeError(f"cannot reach the GPUs before burn-in: {exc}") from exc

    def gemm_tflops(self, gpu: int, dtype: str, seconds: float | None = None) -> float:
        """Sustained TFLOP/s of square matmuls on random inputs for ``seconds`` (default per probe).

        "tf32" runs float32 inputs with TF32 tensor cores allowed; "fp32" with them off.
        """
        torch = load_torch()
        if dtype not in _DTYPES:
            raise ProbeError(f"unknown GEMM dtype {dtype!r} (one of {', '.join(_DTYPES)})")
        duration = self.gemm_seconds if seconds is None else seconds
        n = self.gemm_size
        dev = self._dev(torch, gpu)
        matmul_flags = torch.backends.cuda.matmul
        saved_tf32 = matmul_flags.allow_tf32
        with self._on(torch, dev):
            try:
                matmul_flags.allow_tf32 = dtype == "tf32"
                dt = getattr(torch, _DTYPES[dtype])
                # Random operands: zeros let the hardware (and power draw) coast.
                a = torch.randn(n, n, device=dev, dtype=dt)
                b = torch.randn(n, n, device=dev, dtype=dt)
                c = torch.empty(n, n, device=dev, dtype=dt)
                for _ in range(3):
                    torch.matmul(a, b, out=c)
                self._sync(torch, dev)
                iterations, elapsed = self._timed_loop(
                    torch, dev, lambda: torch.matmul(a, b, out=c), duration
                )
                if not bool(torch.isfinite(c).all()):
                    raise ProbeError(f"GEMM on GPU {gpu} produced non-finite values")
            except (RuntimeError, ValueError) as exc:
                if isinstance(exc, ProbeError):
                    raise
                raise ProbeError(f"GEMM {dtype} on GPU {gpu} failed: {exc}") from exc
            finally:
                matmul_flags.allow_tf32 = saved_tf32
                a = b = c = None
                self._release(torch)
        if elapsed <= 0:
            raise ProbeError("GEMM timing returned no elapsed time")
        return gemm_flops(n, iterations) / elapsed / 1e12

    def _timed_loop(self, torch: Any, dev: Any, step: Any, duration: float) -> tuple[int, float]:
        """Run ``step`` in chunks until ``duration`` wall seconds pass: (iterations, seconds).

        On CUDA each chunk is timed with events around queued kernels, so host
        overhead between launches does not count; one sync per chunk keeps the
        run bounded in wall time.
        """
        chunk = 1
        iterations = 0
        elapsed = 0.0
        deadline = time.perf_counter() + duration
        while True:
            if self.device == "cuda":
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(chunk):
                    step()
                end.record()
                end.synchronize()
                took = start.elapsed_time(end) / 1000.0
            else:
                t0 = time.perf_counter()
                for _ in range(chunk):
                    step()
                took = time.perf_counter() - t0
            iterations += chunk
            elapsed += took
            left = deadline - time.perf_counter()
            if left <= 0:
                return iterations, elapsed
            # Grow chunks towards ~0.5 s each, but never past what time is left.
            per_step = took / chunk if took > 0 else 1e-3
            chunk = max(1, min(int(0.5 / per_step), int(left / per_step) + 1, chunk * 4))

    def hbm_gbps(self, gpu: int) -> float:
        """Device-to-device copy in GB/s (10^9 B/s, bytes read plus written), median of repeats."""
        torch = load_torch()
        dev = self._dev(torch, gpu)
        numel = self.hbm_bytes // 4
        nbytes = numel * 4
        with self._on(torch, dev):
            try:
                src = torch.rand(numel, device=dev, dtype=torch.float32)
                dst = torch.empty_like(src)
                for _ in range(2):
                    dst.copy_(src)
                self._sync(torch, dev)
                rates: list[float] = []
                for _ in range(self.hbm_repeats):
                    if self.device == "cuda":
                        start = torch.cuda.Event(enable_timing=True)
                        end = torch.cuda.Event(enable_timing=True)
                        start.record()
                        dst.copy_(src)
                        end.record()
                        end.synchronize()
                        took = start.elapsed_time(end) / 1000.0
                    else:
                        t0 = time.perf_counter()
                        dst.copy_(src)
                        took = time.perf_counter() - t0
                    if took > 0:
                        rates.append(2 * nbytes / took / 1e9)
                if not bool(torch.equal(dst[:1024], src[:1024])):
                    raise ProbeError(f"copy on GPU {gpu} corrupted data")
            except RuntimeError as exc:
                if isinstance(exc, ProbeError):
                    raise
                raise ProbeError(f"HBM copy on GPU {gpu} failed: {exc}") from exc
            finally:
                src = dst = None
                self._release(torch)
        if not rates:
            raise ProbeError("HBM copy timing returned no elapsed time")
        return statistics.median(rates)

    def sdc_run(self, gpu: int) -> SdcRun:
        """The known-answer GEMM chain on ``gpu`` (health/burnin/sdc.py): its checksums."""
        torch = load_torch()
        dev = self._dev(torch, gpu)
        if self._sdc_inputs is None:
            self._sdc_inputs = make_inputs(torch, self.sdc_kernel)
        with self._on(torch, dev):
            try:
                return run_sdc(torch, dev, self.sdc_kernel, self._sdc_inputs)
            except RuntimeError as exc:
                if isinstance(exc, ProbeError):
                    raise
                raise ProbeError(f"SDC chain on GPU {gpu} failed: {exc}") from exc
            finally:
                self._release(torch)

    def nccl_busbw_gbps(self) -> float:
        """All-reduce bus bandwidth across the node's GPUs (GB/s), as nccl-tests computes it.

        One process per GPU (NCCL), or two CPU processes (gloo) as a stand-in.
        With one GPU there is no bus: the figure is the local all-reduce's
        algorithm bandwidth (see ``bus_bandwidth``). A hung collective is killed
        after ``allreduce_timeout_seconds``.
        """
        ranks = self.allreduce_ranks
        if ranks < 1:
            raise ProbeError("no GPUs for the all-reduce")
        self._release(load_torch())
        result = run_allreduce(
            AllReduceGroup(
                init_method=f"tcp://127.0.0.1:{free_port()}",
                rank_base=0,
                local_ranks=ranks,
                world_size=ranks,
                backend="nccl" if self.device == "cuda" else "gloo",
                loopback=True,
            ),
            self.allreduce_bytes,
            self.allreduce_timeout_seconds,
        )
        if result is None:
            raise ProbeError("all-reduce left no result")
        return float(result["busbw_gbps"])
