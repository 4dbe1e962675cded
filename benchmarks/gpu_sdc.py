"""Device check: the SDC check (health/checks/sdc.py) on a real GPU machine, timed.

    python3 benchmarks/gpu_sdc.py --out DIR [--runs 3] [--size 4096 --chain 32] [--cpu]

Not run in CI (tests/unit/test_sdc_cpu.py runs it once on the CPU at toy sizes so it does
not rot). On every visible GPU it runs the known-answer GEMM chain (bf16 and fp32 without
TF32, health/burnin/sdc.py) ``--runs`` times, and reports: seconds per GPU and run, the
TFLOP/s that implies, whether every GPU's checksums are bitwise equal (across GPUs, across
repeats, across runs), the stack text and key, and the SdcCheck's verdict through the
burn-in's own path (run_checks with TorchProbe). Then it shows the check catching a
corrupted GPU: one input bit flipped on the last GPU must make that GPU, and only it, the
suspect. Results go to DIR/gpu_sdc.json and DIR/gpu_sdc.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.gpu_node_check import _fallback_snapshot, _part, markdown_table  # noqa: E402
from health.burnin.sdc import SdcKernel, make_inputs  # noqa: E402
from health.checks.sdc import SdcCheck  # noqa: E402
from health.probe import SdcRun  # noqa: E402
from health.runner import run_checks  # noqa: E402
from health.telemetry import NodeExpectation  # noqa: E402
from health.thresholds import Thresholds  # noqa: E402


def chain_tflop(kernel: SdcKernel) -> float:
    """TFLOP of one run of the chain, both dtypes (a multiply-add is 2)."""
    return 2.0 * kernel.size**3 * kernel.chain * 2 / 1e12


class FlipOneGpu:
    """The real probe, except that GPU ``gpu`` computes from inputs with one bit flipped:
    a GPU whose arithmetic went wrong once, as the check must see it."""

    def __init__(self, probe: Any, gpu: int) -> None:
        self.probe = probe
        self.gpu = gpu
        self.judges_floors = probe.judges_floors

    def sdc_run(self, gpu: int) -> SdcRun:
        if gpu != self.gpu:
            run: SdcRun = self.probe.sdc_run(gpu)
            return run
        from health.burnin.sdc import run_sdc

        torch = _torch()
        x, ws = self.probe._sdc_inputs
        flipped = x.clone()
        flipped.view(torch.int32)[1, 2] ^= 1 << 4
        dev = self.probe._dev(torch, gpu)
        with self.probe._on(torch, dev):
            return run_sdc(torch, dev, self.probe.sdc_kernel, (flipped, ws))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.probe, name)


def _torch() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch

        return torch


def measure(probe: Any, gpus: Sequence[int], runs: int) -> dict[str, Any]:
    kernel: SdcKernel = probe.sdc_kernel
    per: list[dict[str, Any]] = []
    sums: set[str] = set()
    for run in range(runs):
        for gpu in gpus:
            r = probe.sdc_run(gpu)
            sums.update(r.checksums)
            per.append(
                {
                    "run": run,
                    "gpu": gpu,
                    "seconds": round(r.seconds, 4),
                    "tflops": round(chain_tflop(kernel) * len(r.checksums) / r.seconds, 2),
                    "checksums": list(r.checksums),
                    "stack": r.stack,
                }
            )
    after_first = [p for p in per if p["run"] > 0] or per
    return {
        "kernel": kernel.key,
        "repeats": kernel.repeats,
        "tflop_per_run": round(chain_tflop(kernel), 3),
        "runs": per,
        "distinct_checksums": sorted(sums),
        "bitwise_equal_everywhere": len(sums) == 1,
        # The first run of each GPU pays for the inputs' copy and cuBLAS's warm-up.
        "seconds_per_gpu_after_first": sorted(p["seconds"] for p in after_first),
    }


def check_part(probe: Any, snap: Any, model: str) -> dict[str, Any]:
    expectation = NodeExpectation(gpu_count=len(snap.gpus), gpu_model=model)
    t0 = time.perf_counter()
    (r,) = run_checks([SdcCheck()], snap, expectation, Thresholds(), probe=probe)
    took = time.perf_counter() - t0
    return {"seconds": round(took, 3), "status": r.status.value, "fatal": r.fatal,
            "evidence": r.evidence, "gpus": list(r.gpus), "values": dict(r.values)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--node", default=socket.gethostname())
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--chain", type=int, default=None)
    p.add_argument("--weights", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--cpu", action="store_true", help="the CPU stand-in (smoke test)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "errors": {}}
    torch = _torch()
    from health.burnin.torch_probe import TorchProbe

    base = SdcKernel() if not a.cpu else SdcKernel(size=96, chain=6, weights=3, repeats=2)
    kernel = SdcKernel(
        size=a.size or base.size,
        chain=a.chain or base.chain,
        weights=a.weights or base.weights,
        repeats=a.repeats or base.repeats,
    )
    probe = TorchProbe(device="cpu" if a.cpu else None, sdc_kernel=kernel)
    snap = _fallback_snapshot(a.node, torch, a.cpu)
    if a.cpu:
        # The CPU stands in for any GPU index: three, so the flipped one is outvoted.
        g = snap.gpus[0]
        snap = dataclasses.replace(
            snap, gpus=tuple(dataclasses.replace(g, index=i) for i in range(3))
        )
    gpus = [g.index for g in snap.gpus]
    model = snap.gpus[0].model if snap.gpus else ""
    report["device"] = {"gpus": len(gpus), "model": model, "device": probe.device}
    t0 = time.perf_counter()
    probe._sdc_inputs = make_inputs(torch, kernel)  # once a node, on the CPU
    report["inputs_seconds"] = round(time.perf_counter() - t0, 3)
    report["measure"] = _part(report, "measure", lambda: measure(probe, gpus, a.runs))
    report["check"] = _part(report, "check", lambda: check_part(probe, snap, model))
    if len(gpus) > 1:
        flip = FlipOneGpu(probe, gpus[-1])
        report["flip"] = _part(report, "flip", lambda: check_part(flip, snap, model))
    rows: list[list[Any]] = []
    m = report.get("measure") or {}
    for run in m.get("runs", []):
        rows.append(
            [run["run"], run["gpu"], run["seconds"], run["tflops"], run["checksums"][0][:16]]
        )
    table = markdown_table(["run", "GPU", "seconds", "TFLOP/s", "checksum"], rows)
    (a.out / "gpu_sdc.json").write_text(json.dumps(report, indent=2, default=str))
    lines = [f"# SDC check — {report['started']}", "", table, ""]
    for part in ("check", "flip"):
        r = report.get(part)
        if r:
            lines.append(f"- {part}: {r['status']} in {r['seconds']} s, GPUs {r['gpus']}: "
                         f"{r['evidence']}")  # fmt: skip
    (a.out / "gpu_sdc.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    ok = not report["errors"] and (report.get("check") or {}).get("status") == "pass"
    flip = report.get("flip")
    if flip is not None:
        # With two GPUs there is no majority: both are suspects, the flipped one among them.
        ok = ok and flip["status"] == "fail" and flip["fatal"] and gpus[-1] in flip["gpus"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
