"""What each GPU model's nodes should show (beyond the burn-in floors)."""

from __future__ import annotations

# NVLink links per GPU on the SXM parts: 18 NVLink 4 on H100/H200, 12 NVLink 3 on A100,
# 18 NVLink 5 on B200 and GB200 (on GB200 they run to the rack's NVLink switch trays: the
# NVLink domain of an NVL72 rack, health/nvlink_domain.py). A GPU alone in a machine (a VM
# with one passed-through GPU) has none.
NVLINKS_PER_GPU = {"H100-SXM": 18, "H200": 18, "A100-SXM": 12, "B200": 18, "GB200": 18}
# Models whose nodes share an NVLink domain beyond the node (a rack's switch trays).
RACK_NVLINK_MODELS = frozenset({"GB200"})


def expected_nvlinks(model: str, gpus: int) -> int | None:
    return NVLINKS_PER_GPU.get(model) if gpus > 1 else None
