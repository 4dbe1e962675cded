"""What each GPU model's nodes should show (beyond the burn-in floors)."""

from __future__ import annotations

# NVLink links per GPU on the SXM parts: 18 NVLink 4 on H100/H200, 12 NVLink 3 on A100,
# 18 NVLink 5 on B200. A GPU alone in a machine (a VM with one passed-through GPU) has none.
NVLINKS_PER_GPU = {"H100-SXM": 18, "H200": 18, "A100-SXM": 12, "B200": 18}


def expected_nvlinks(model: str, gpus: int) -> int | None:
    return NVLINKS_PER_GPU.get(model) if gpus > 1 else None
