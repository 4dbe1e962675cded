"""How bf16 GEMM throughput holds up over time on one GPU (device script).

Burn-in wants the sustained figure (minutes of load, clocks settled under the power limit),
not the burst figure of a few products. This measures both, with the clocks, power and
clock-event reasons NVML reports right after each run, to set the floors in
health/data/floors.toml.

    python3 benchmarks/gemm_sustain.py            (repo root; torch and nvidia-ml-py needed)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from health.burnin.torch_probe import TorchProbe


def nvml_state() -> dict[str, object]:
    try:
        import pynvml as nv

        nv.nvmlInit()
        h = nv.nvmlDeviceGetHandleByIndex(0)
        return {
            "sm_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
            "power_w": nv.nvmlDeviceGetPowerUsage(h) / 1000,
            "limit_w": nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000,
            "temp_c": nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),
            "reasons": hex(nv.nvmlDeviceGetCurrentClocksEventReasons(h)),
        }
    except Exception as exc:  # a measurement script: report, never die
        return {"error": str(exc)}


def main() -> None:
    rows = []
    for size in (8192, 16384):
        probe = TorchProbe(gemm_size=size)
        for seconds in (1.0, 5.0, 15.0):
            t0 = time.perf_counter()
            tflops = probe.gemm_tflops(0, "bf16", seconds)
            row = {
                "size": size,
                "seconds": seconds,
                "tflops": round(tflops, 1),
                "wall": round(time.perf_counter() - t0, 1),
                **nvml_state(),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| n | run s | bf16 TFLOP/s | SM MHz after | power W | reasons |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['seconds']:g} | {r['tflops']} | {r.get('sm_mhz')} | "
            f"{r.get('power_w')} | {r.get('reasons')} |"
        )


if __name__ == "__main__":
    main()
