"""A fault of an NVL72 rack's NVLink domain: one of its switch trays fails.

The kinds in health/simulated/faults.py each strike one GPU of one node; a switch tray
is shared by the whole rack: every GPU of the rack's 18 compute trays loses the 2 links
it has on that tray, and with them its NVLink bandwidth through the fabric. No node did
anything: the rack's NVLink domain is degraded as one.
"""

from __future__ import annotations

from health.simulated.fleet import SimulatedFleet
from health.simulated.hardware import (
    LINKS_PER_SWITCH_TRAY,
    NVL72_SWITCH_TRAYS,
    RACK_DOMAIN_MODELS,
)

SWITCH_TRAY_FAULT = "nvlink_switch_tray"
# NVLink errors the link layer counts as the tray goes (per GPU).
_CRC, _REPLAY = 2000, 300


def fail_switch_tray(fleet: SimulatedFleet, rack: str, tray: int = 0) -> list[str]:
    """Fail switch tray ``tray`` of ``rack``; returns the rack's nodes, each now with 2 links
    down on every GPU. Cleared node by node by a repair (the tray replaced)."""
    nodes = [n for n in fleet.nodes.values() if n.rack == rack]
    if not nodes:
        raise KeyError(rack)
    if nodes[0].model not in RACK_DOMAIN_MODELS:
        raise ValueError(f"rack {rack} ({nodes[0].model}) has no NVLink switch trays")
    if not 0 <= tray < NVL72_SWITCH_TRAYS:
        raise ValueError(f"an NVL72 rack has switch trays 0-{NVL72_SWITCH_TRAYS - 1}")
    links = range(tray * LINKS_PER_SWITCH_TRAY, (tray + 1) * LINKS_PER_SWITCH_TRAY)
    fleet.now += 0.001  # after whatever was read at this instant (as SimulatedFleet.inject)
    for n in nodes:
        for g in n.gpus:
            g.nvlink_down = sorted({*g.nvlink_down, *links})
            g.nvlink_crc += _CRC
            g.nvlink_replay += _REPLAY
        n.faults.append(
            {
                "kind": SWITCH_TRAY_FAULT,
                "gpu": None,
                "tray": tray,
                "at": fleet.now,
                "clears": "repair",
            }
        )
        fleet.changed.add(n.name)
    fleet.injected += 1
    return [n.name for n in nodes]
