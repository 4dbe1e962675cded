"""The protocol for active measurements on a node's GPUs (burn-in)."""

from __future__ import annotations

from typing import Protocol


class ProbeError(RuntimeError):
    """A measurement could not run (no GPU, kernel failed, backend missing)."""


class ActiveProbe(Protocol):
    """Runs burn-in workloads. Only ever used on a node without jobs."""

    # False where the kernels run on a stand-in (CPU): floors are then not judged.
    judges_floors: bool

    def reset(self) -> None:
        """Reset the GPUs before the suite, so volatile error state starts clean."""

    def gemm_tflops(self, gpu: int, dtype: str) -> float: ...

    def hbm_gbps(self, gpu: int) -> float: ...

    def nccl_busbw_gbps(self) -> float: ...
