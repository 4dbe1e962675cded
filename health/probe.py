"""The protocol for active measurements on a node's GPUs (burn-in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ProbeError(RuntimeError):
    """A measurement could not run (no GPU, kernel failed, backend missing)."""


@dataclass(frozen=True, slots=True)
class SdcRun:
    """One GPU's run of the known-answer computation (health/burnin/sdc.py).

    ``checksums``: the sha256 of the output bits, one per repeat (a GPU whose repeats
    differ is unstable). ``stack``: the software that produced them as the probe knows it
    (framework, CUDA, device properties); the check adds the GPU model and driver.
    ``kernel``: the computation's parameters. Equal stack and kernel must give equal bits.
    """

    checksums: tuple[str, ...]
    stack: str
    kernel: str
    seconds: float


class ActiveProbe(Protocol):
    """Runs burn-in workloads. Only ever used on a node without jobs."""

    # False where the kernels run on a stand-in (CPU): floors are then not judged.
    judges_floors: bool

    def reset(self) -> None:
        """Reset the GPUs before the suite, so volatile error state starts clean."""

    def gemm_tflops(self, gpu: int, dtype: str) -> float: ...

    def hbm_gbps(self, gpu: int) -> float: ...

    def nccl_busbw_gbps(self) -> float: ...

    def sdc_run(self, gpu: int) -> SdcRun: ...
