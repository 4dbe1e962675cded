"""Burn-in on the simulated fleet: figures follow the injected performance faults."""

from __future__ import annotations

import functools
import hashlib

from health.probe import ProbeError, SdcRun
from health.simulated.faults import FaultKind
from health.simulated.fleet import SimulatedFleet
from health.simulated.hardware import unit_noise
from health.simulated.telemetry import FleetAccess


class SimulatedProbe:
    judges_floors = True

    def __init__(self, access: FleetAccess, node: str) -> None:
        self._access = access
        self._node = node

    def reset(self) -> None:
        with self._access() as fleet:
            fleet.reset(self._node)

    def _gpu_factor(self, fleet: SimulatedFleet, gpu: int) -> tuple[int, float]:
        n = fleet.nodes[self._node]
        if n.pristine and 0 <= gpu < n.gpu_count:
            return n.index, 1.0  # as new: present, at full speed
        g = n.gpus[gpu]
        if not g.present:
            raise ProbeError(f"GPU {gpu} not present")
        return n.index, g.gemm_factor

    def gemm_tflops(self, gpu: int, dtype: str) -> float:
        with self._access() as fleet:
            idx, factor = self._gpu_factor(fleet, gpu)
            peak = fleet.performance(fleet.nodes[self._node].model)[0]
            scale = 1.0 if dtype == "bf16" else 0.45
            return peak * scale * factor * (1.0 + 0.015 * unit_noise(idx, gpu, 11))

    def hbm_gbps(self, gpu: int) -> float:
        with self._access() as fleet:
            idx, _ = self._gpu_factor(fleet, gpu)
            return fleet.performance(fleet.nodes[self._node].model)[1] * (
                1.0 + 0.015 * unit_noise(idx, gpu, 12)
            )

    def nccl_busbw_gbps(self) -> float:
        with self._access() as fleet:
            n = fleet.nodes[self._node]
            if not n.pristine and not all(g.present for g in n.gpus):
                raise ProbeError("not all GPUs present for the all-reduce")
            return (
                fleet.performance(n.model)[2]
                * n.nccl_factor
                * (1.0 + 0.02 * unit_noise(n.index, 13))
            )

    def sdc_run(self, gpu: int) -> SdcRun:
        """The known-answer computation as a healthy GPU of the model answers it (one fixed
        output per model), with one bit flipped where the GPU has an SDC fault."""
        with self._access() as fleet:
            self._gpu_factor(fleet, gpu)  # raises for a GPU that is not there
            n = fleet.nodes[self._node]
            flipped = any(
                f["kind"] == FaultKind.SDC_BITFLIP.value and f["gpu"] == gpu for f in n.faults
            )
            model = n.model
        checksum = _checksum(model, flipped)
        return SdcRun((checksum, checksum), "simulated", SIM_KERNEL, 0.0)


SIM_KERNEL = "simulated-gemm-chain.v1"


# Memoised: a pure function of two values, asked for every GPU of every burn-in (24,568
# times on a first sweep of 10,240 nodes, 0.2 s of hashing for a handful of answers).
@functools.cache
def _checksum(model: str, flipped: bool) -> str:
    output = bytearray(hashlib.shake_256(f"{SIM_KERNEL}|{model}".encode()).digest(4096))
    if flipped:
        output[1234] ^= 0x08  # one bit, deep in the output: as an SDC GPU would
    return hashlib.sha256(output).hexdigest()
