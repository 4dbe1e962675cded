"""Device check: the real node checks on a real GPU machine, timed, with every figure kept.

    python3 benchmarks/gpu_node_check.py --out DIR [--gemm-seconds 15] [--cpu]

Needs only the standard library, this repository, and optionally torch and
nvidia-ml-py (no network). It prints the device, times the passive suite
(NvmlTelemetry snapshot + run_passive, 5 times), reads each GPU's power and limits and the
BMC's, sets a cap on GPU 0 (80 % of its default), reads it back and reverts it, through NVML
and through computectl's loop (benchmarks/gpu_power.py; --no-power-cap skips it), runs
burn-in through run_burn_in with TorchProbe (bf16 GEMM 8192^3 sustained, HBM copy, NCCL
all-reduce over the node's GPUs), measures a tf32 GEMM beside it, compares
each figure with its floor (health/data/floors.toml), and runs ``dcgmi diag
-r 1`` where DCGM is installed. Every part catches its own errors: one that
fails is reported and the others' figures are kept. Results go to
DIR/gpu_node_check.json and DIR/gpu_node_check.md; a summary table prints last.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from health.floors import Floors, load_floors  # noqa: E402
from health.result import CheckResult  # noqa: E402
from health.telemetry import GpuReading, NodeExpectation, NodeSnapshot  # noqa: E402
from health.thresholds import Thresholds  # noqa: E402

# -- pure helpers (tested on CPU) ----------------------------------------------


def ratio(value: float | None, floor: float | None) -> float | None:
    """value / floor, rounded; None where either is missing or the floor is 0."""
    if value is None or not floor:
        return None
    return round(value / floor, 4)


def time_summary(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "min_seconds": round(min(seconds), 4),
        "median_seconds": round(statistics.median(seconds), 4),
        "max_seconds": round(max(seconds), 4),
        "runs": len(seconds),
    }


def result_row(r: CheckResult) -> dict[str, Any]:
    return {
        "check": r.check,
        "status": r.status.value,
        "evidence": r.evidence,
        "values": dict(r.values),
        "gpus": list(r.gpus),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 10 else f"{v:.1f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def figures_from_burnin(results: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The measured figures in run_burn_in's results, keyed as the floors are."""
    by_check = {r["check"]: r.get("values", {}) for r in results}
    return {
        "gemm_bf16_tflops": by_check.get("gemm_bf16", {}).get("min_tflops"),
        "hbm_gbps": by_check.get("hbm_bandwidth", {}).get("min_gbps"),
        "nccl_busbw_gbps": by_check.get("nccl_allreduce", {}).get("busbw_gbps"),
    }


def summary_rows(report: Mapping[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    passive = report.get("passive") or {}
    if "timing" in passive:
        t = passive["timing"]
        rows.append(["passive suite (snapshot + checks)", t["median_seconds"], "s", None, None])
    figures = (report.get("burnin") or {}).get("figures") or {}
    floors = (report.get("burnin") or {}).get("floors") or {}
    units = {
        "gemm_bf16_tflops": "TFLOP/s",
        "gemm_tf32_tflops": "TFLOP/s",
        "hbm_gbps": "GB/s",
        "nccl_busbw_gbps": "GB/s",
    }
    for key, unit in units.items():
        if key in figures:
            rows.append(
                [key, figures[key], unit, floors.get(key), ratio(figures[key], floors.get(key))]
            )
    burnin = report.get("burnin") or {}
    if "suite_wall_seconds" in burnin:
        rows.append(["burn-in suite wall time", burnin["suite_wall_seconds"], "s", None, None])
    if "verdict" in burnin:
        rows.append(["burn-in verdict", burnin["verdict"], "", None, None])
    for name, err in (report.get("errors") or {}).items():
        rows.append([f"ERROR in {name}", err.splitlines()[0][:120], "", None, None])
    return rows


# -- the parts -----------------------------------------------------------------


def _part(report: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    """Run one part; its error is recorded under report["errors"] and None returned."""
    t0 = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        value = fn()
    except BaseException as exc:  # a part must never take the others down
        if isinstance(exc, KeyboardInterrupt):
            raise
        report.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
        report.setdefault("tracebacks", {})[name] = traceback.format_exc()
        print(f"   {name} failed: {type(exc).__name__}: {exc}", flush=True)
        return None
    finally:
        report.setdefault("part_seconds", {})[name] = round(time.perf_counter() - t0, 3)
    return value


def load_torch() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch

        return torch


def device_info(cpu: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        torch = load_torch()
        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available() and not cpu:
            info["cuda_devices"] = [
                {
                    "index": i,
                    "name": torch.cuda.get_device_name(i),
                    "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
                    "memory_gib": round(
                        torch.cuda.get_device_properties(i).total_memory / 2**30, 1
                    ),
                }
                for i in range(torch.cuda.device_count())
            ]
            info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception as exc:
        info["torch_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import pynvml

        info["nvidia_ml_py"] = getattr(pynvml, "__version__", "?")
    except ImportError:
        info["nvidia_ml_py"] = None
    return info


def passive_part(node: str, repeats: int, state: dict[str, Any]) -> dict[str, Any]:
    from health.checks.base import CheckContext
    from health.checks.infiniband import InfinibandCheck
    from health.kernel_log import KernelLog
    from health.nvml import NvmlTelemetry
    from health.runner import run_passive

    telemetry = NvmlTelemetry()
    state["telemetry"] = telemetry
    t0 = time.perf_counter()
    first = telemetry.snapshot(node, None)  # includes nvmlInit
    first_seconds = time.perf_counter() - t0
    model = first.gpus[0].model if first.gpus else ""
    expectation = NodeExpectation(gpu_count=len(first.gpus), gpu_model=model)
    state["snapshot"], state["expectation"] = first, expectation
    runs: list[float] = []
    snap_only: list[float] = []
    results: list[CheckResult] = []
    snap = first
    for _ in range(repeats):
        t0 = time.perf_counter()
        snap = telemetry.snapshot(node, None)
        t1 = time.perf_counter()
        results = run_passive(snap, expectation, Thresholds())
        results.append(InfinibandCheck().run(CheckContext(snapshot=snap, expectation=expectation)))
        runs.append(time.perf_counter() - t0)
        snap_only.append(t1 - t0)
    t0 = time.perf_counter()
    _, xid_error = KernelLog().xid_events(None, {})
    kernel_log_seconds = time.perf_counter() - t0
    state["snapshot"] = snap
    out: dict[str, Any] = {
        "timing": time_summary(runs),
        "snapshot_timing": time_summary(snap_only),
        "first_snapshot_seconds_with_nvml_init": round(first_seconds, 4),
        "kernel_log_read_seconds": round(kernel_log_seconds, 4),
        "gpus": [asdict(g) for g in snap.gpus],
        "driver_version": snap.driver_version,
        "cuda_version": snap.cuda_version,
        "xid_events": [asdict(e) for e in snap.xid_events],
        "xid_source_error": xid_error,
        "ib_ports": [asdict(p) for p in snap.ib_ports],
        "checks": [result_row(r) for r in results],
    }
    for r in results:
        print(f"   {r.check:<12} {r.status.value:<5} {r.evidence}", flush=True)
    print(f"   passive median {out['timing']['median_seconds']} s", flush=True)
    return out


def _fallback_snapshot(node: str, torch: Any, cpu: bool) -> NodeSnapshot:
    """A snapshot from torch alone, so burn-in runs (and reports) even without NVML."""
    count = torch.cuda.device_count() if (torch.cuda.is_available() and not cpu) else 1
    name = (
        torch.cuda.get_device_name(0) if count and not cpu and torch.cuda.is_available() else "cpu"
    )
    from health.nvml import gpu_model

    gpus = tuple(
        GpuReading(
            index=i, uuid=f"torch-{i}", serial="", model=gpu_model(name), pci_bus_id="",
            temperature_celsius=0.0, temperature_slowdown_celsius=0.0, power_watts=0.0,
            power_limit_watts=0.0, utilisation_ratio=0.0, ecc_volatile_uncorrected=0,
            ecc_aggregate_uncorrected=0, retired_pages_pending=False,
            remapped_rows_pending=False, remapped_rows_failure=False,
            remapped_rows_uncorrectable=0, nvlink_links_total=0, nvlink_links_down=(),
            nvlink_crc_errors=0, nvlink_replay_errors=0, pcie_gen_current=0, pcie_gen_max=0,
            pcie_width_current=0, pcie_width_max=0, throttle_reasons=frozenset(),
        )
        for i in range(count)
    )  # fmt: skip
    return NodeSnapshot(node=node, at=datetime.now(UTC), gpus=gpus, xid_events=())


def burnin_part(
    node: str,
    gemm_seconds: float,
    cpu: bool,
    state: dict[str, Any],
    model_override: str | None = None,
) -> dict[str, Any]:
    from health.burnin.torch_probe import TorchProbe
    from health.runner import run_burn_in

    torch = load_torch()
    snap: NodeSnapshot | None = state.get("snapshot")
    source = "nvml"
    if snap is None or not snap.gpus:
        snap, source = _fallback_snapshot(node, torch, cpu), "torch (NVML unavailable)"
    expectation = state.get("expectation") or NodeExpectation(
        gpu_count=len(snap.gpus), gpu_model=snap.gpus[0].model
    )
    # --model names the floors to compare with where NVML's name is not one the table maps.
    model = model_override or snap.gpus[0].model
    floors: Floors | None = load_floors().get(model)
    probe = TorchProbe(device="cpu" if cpu else None, gemm_seconds=gemm_seconds)
    probe.reset()
    t0 = time.perf_counter()
    results = run_burn_in(snap, expectation, Thresholds(), probe, floors)
    wall = time.perf_counter() - t0
    rows = [result_row(r) for r in results]
    for r in results:
        print(f"   {r.check:<14} {r.status.value:<5} {r.evidence} {dict(r.values)}", flush=True)
    figures: dict[str, Any] = figures_from_burnin(rows)
    out: dict[str, Any] = {
        "snapshot_source": source,
        "model": model,
        "judges_floors": probe.judges_floors,
        "gemm_seconds": gemm_seconds,
        "gemm_size": probe.gemm_size,
        "hbm_bytes": probe.hbm_bytes,
        "allreduce_bytes": probe.allreduce_bytes,
        "allreduce_ranks": probe.allreduce_ranks,
        "suite_wall_seconds": round(wall, 2),
        "checks": rows,
        "verdict": next((r["status"] for r in rows if r["check"] == "burnin"), None),
        "figures": figures,
        "floors": (
            {
                "gemm_bf16_tflops": floors.gemm_bf16_tflops,
                "gemm_tf32_tflops": floors.gemm_tf32_tflops,
                "hbm_gbps": floors.hbm_gbps,
                "nccl_busbw_gbps": floors.nccl_busbw_gbps,
            }
            if floors is not None
            else {}
        ),
    }
    state["probe"], state["burnin"] = probe, out
    return out


def tf32_part(seconds: float, state: dict[str, Any]) -> float:
    probe = state["probe"]
    value = float(probe.gemm_tflops(0, "tf32", seconds=seconds))
    state["burnin"]["figures"]["gemm_tf32_tflops"] = value
    print(f"   tf32 GEMM {value:.1f} TFLOP/s", flush=True)
    return value


def dcgm_part(node: str) -> dict[str, Any] | None:
    from health.dcgm import run_dcgm_diag

    r = run_dcgm_diag(node, 1, timeout_seconds=120)
    return None if r is None else result_row(r)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--node", default=socket.gethostname())
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--gemm-seconds", type=float, default=15.0)
    p.add_argument("--tf32-seconds", type=float, default=5.0)
    p.add_argument("--cpu", action="store_true", help="run burn-in on the CPU (smoke test)")
    p.add_argument("--no-dcgm", action="store_true")
    p.add_argument("--no-power-cap", action="store_true", help="read power, set no cap")
    p.add_argument("--model", help="floors to compare with (e.g. H200), if NVML's name differs")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "errors": {}}
    state: dict[str, Any] = {}
    report["device"] = _part(report, "device", lambda: device_info(a.cpu))
    print(json.dumps(report["device"], indent=1), flush=True)
    report["passive"] = _part(report, "passive", lambda: passive_part(a.node, a.repeats, state))
    gemm_seconds = a.gemm_seconds if not a.cpu else min(a.gemm_seconds, 0.5)
    tf32_seconds = a.tf32_seconds if not a.cpu else min(a.tf32_seconds, 0.5)
    report["burnin"] = _part(
        report, "burnin", lambda: burnin_part(a.node, gemm_seconds, a.cpu, state, a.model)
    )
    if "probe" in state:
        report["tf32"] = _part(report, "tf32", lambda: tf32_part(tf32_seconds, state))
    if telemetry_power := getattr(state.get("telemetry"), "power_source", None):
        from benchmarks.gpu_power import power_part

        report["power"] = _part(
            report, "power", lambda: power_part(telemetry_power(a.node), not a.no_power_cap)
        )
    if not a.no_dcgm:
        report["dcgm"] = _part(report, "dcgm", lambda: dcgm_part(a.node))
    telemetry = state.get("telemetry")
    if telemetry is not None:
        _part(report, "close", telemetry.close)
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    rows = summary_rows(report)
    table = markdown_table(["measure", "value", "unit", "floor", "ratio to floor"], rows)
    (a.out / "gpu_node_check.json").write_text(json.dumps(report, indent=2, default=str))
    md = [f"# GPU node check — {report['started']}", "", table, ""]
    passive = report.get("passive") or {}
    if passive.get("checks"):
        md += ["## Passive checks", ""]
        md.append(
            markdown_table(
                ["check", "status", "evidence"],
                [[c["check"], c["status"], c["evidence"]] for c in passive["checks"]],
            )
        )
    (a.out / "gpu_node_check.md").write_text("\n".join(md) + "\n")
    print("\n" + table, flush=True)
    print(f"total {report['total_seconds']} s; written to {a.out}", flush=True)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
