"""Burn-in floors per GPU model, from the data file shipped with the package."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Floors:
    model: str
    gemm_bf16_tflops: float
    gemm_tf32_tflops: float
    hbm_gbps: float
    nccl_busbw_gbps: float
    source: str


def load_floors() -> dict[str, Floors]:
    raw = tomllib.loads(resources.files("health").joinpath("data/floors.toml").read_text())
    return {
        model: Floors(
            model=model,
            gemm_bf16_tflops=float(v["gemm_bf16_tflops"]),
            gemm_tf32_tflops=float(v["gemm_tf32_tflops"]),
            hbm_gbps=float(v["hbm_gbps"]),
            nccl_busbw_gbps=float(v["nccl_busbw_gbps"]),
            source=str(v["source"]),
        )
        for model, v in raw["models"].items()
    }
