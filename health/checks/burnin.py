"""Burn-in checks: sustained GEMM and HBM per GPU, NCCL all-reduce across the node.

Each result reports the measured figure, the floor and their ratio. A GPU is
also judged against its node's median, which finds one slow GPU even where
no floor is known for the model.

Each result also carries every GPU's figure (``gpu<i>_<unit>``) and the software stack it
was measured on (driver, CUDA, torch): the control plane learns floors from the fleet's
passing figures per model and stack, and judges new ones against them at ingest
(health/floor_learning.py, compute/services/learned_floors.py).
"""

from __future__ import annotations

import statistics
import sys

from health.checks.base import CheckContext, verdict
from health.probe import ActiveProbe, ProbeError
from health.result import CheckResult, Status, Suite


def _no_probe(check: object, ctx: CheckContext) -> CheckResult | None:
    if ctx.probe is None:
        return verdict(check, ctx, Status.FAIL, "no burn-in probe on this node")  # type: ignore[arg-type]
    return None


def stack_values(ctx: CheckContext, probe: ActiveProbe) -> dict[str, float | int | str | bool]:
    """The software a burn-in figure was measured on, as the values name it."""
    return {
        "driver": ctx.snapshot.driver_version,
        "cuda": ctx.snapshot.cuda_version,
        "torch": _torch_version(probe),
    }


def _torch_version(probe: ActiveProbe) -> str:
    # The PyTorch probe (health/burnin/) ran its kernels with the torch this process loaded;
    # a stand-in elsewhere (the simulated probe) ran none, and says so with "".
    if not type(probe).__module__.startswith("health.burnin."):
        return ""
    torch = sys.modules.get("torch")
    return str(getattr(torch, "__version__", "")) if torch is not None else ""


class _PerGpuCheck:
    suite = Suite.BURNIN
    name = ""
    version = "1"
    unit = ""
    unit_key = ""
    floor_attr = ""

    def measure(self, probe: ActiveProbe, gpu: int) -> float:
        raise NotImplementedError

    def run(self, ctx: CheckContext) -> CheckResult:
        missing = _no_probe(self, ctx)
        if missing is not None or ctx.probe is None:
            return missing  # type: ignore[return-value]
        probe = ctx.probe
        gpus = [g.index for g in ctx.snapshot.gpus]
        try:
            figures = {gpu: self.measure(probe, gpu) for gpu in gpus}
        except ProbeError as exc:
            return verdict(self, ctx, Status.FAIL, f"{self.name} did not run: {exc}")
        if not figures:
            return verdict(self, ctx, Status.FAIL, "no GPUs to measure")
        floor = float(getattr(ctx.floors, self.floor_attr)) if ctx.floors is not None else None
        median = statistics.median(figures.values())
        rel = ctx.thresholds.burnin_relative_floor
        low: list[str] = []
        bad: list[int] = []
        for gpu, fig in sorted(figures.items()):
            below_floor = probe.judges_floors and floor is not None and fig < floor
            below_peers = probe.judges_floors and len(figures) > 1 and fig < rel * median
            if below_floor or below_peers:
                ref = f"floor {floor:.0f}" if below_floor and floor else f"node median {median:.0f}"
                low.append(f"GPU {gpu} {fig:.0f} {self.unit} ({ref})")
                bad.append(gpu)
        worst = min(figures.values())
        values: dict[str, float | int | str | bool] = {
            f"min_{self.unit_key}": round(worst, 2),
            f"median_{self.unit_key}": round(median, 2),
            "floors_judged": probe.judges_floors,
            **stack_values(ctx, probe),
        }
        for gpu, fig in sorted(figures.items()):
            values[f"gpu{gpu}_{self.unit_key}"] = round(fig, 2)
        if floor is not None:
            values[f"floor_{self.unit_key}"] = floor
            values["min_to_floor_ratio"] = round(worst / floor, 4)
        if low:
            return verdict(self, ctx, Status.FAIL, "; ".join(low), values=values, gpus=tuple(bad))
        note = "" if probe.judges_floors else "measured on a stand-in; floors not judged"
        return verdict(self, ctx, Status.PASS, note, values=values)


class GemmCheck(_PerGpuCheck):
    name = "gemm_bf16"
    unit = "TFLOP/s"
    unit_key = "tflops"
    floor_attr = "gemm_bf16_tflops"

    def measure(self, probe: ActiveProbe, gpu: int) -> float:
        return probe.gemm_tflops(gpu, "bf16")


class HbmCheck(_PerGpuCheck):
    name = "hbm_bandwidth"
    unit = "GB/s"
    unit_key = "gbps"
    floor_attr = "hbm_gbps"

    def measure(self, probe: ActiveProbe, gpu: int) -> float:
        return probe.hbm_gbps(gpu)


class NcclCheck:
    name = "nccl_allreduce"
    version = "1"
    suite = Suite.BURNIN

    def run(self, ctx: CheckContext) -> CheckResult:
        missing = _no_probe(self, ctx)
        if missing is not None or ctx.probe is None:
            return missing  # type: ignore[return-value]
        try:
            busbw = ctx.probe.nccl_busbw_gbps()
        except ProbeError as exc:
            return verdict(self, ctx, Status.FAIL, f"all-reduce did not run: {exc}")
        # One GPU has no bus: its "all-reduce" is a local copy, not a link to judge.
        judged = ctx.probe.judges_floors and len(ctx.snapshot.gpus) > 1
        values: dict[str, float | int | str | bool] = {
            "busbw_gbps": round(busbw, 2),
            "floors_judged": judged,
            **stack_values(ctx, ctx.probe),
        }
        floor = ctx.floors.nccl_busbw_gbps if ctx.floors is not None else None
        if floor is not None:
            values["floor_gbps"] = floor
            values["busbw_to_floor_ratio"] = round(busbw / floor, 4)
            if judged and busbw < floor:
                return verdict(
                    self,
                    ctx,
                    Status.FAIL,
                    f"all-reduce bus bandwidth {busbw:.0f} GB/s (floor {floor:.0f})",
                    values=values,
                )
        return verdict(self, ctx, Status.PASS, values=values)
