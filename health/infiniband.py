"""InfiniBand and RoCE ports, read from sysfs (``/sys/class/infiniband``).

sysfs rather than ``ibstat``: it needs no extra package on the node, and
reading a few small files per port is fast enough for the passive path.
Each port directory holds ``state`` ("4: ACTIVE"), ``phys_state``
("5: LinkUp"), ``rate`` ("400 Gb/sec (4X NDR)") and ``link_layer``
("InfiniBand" or "Ethernet" for RoCE).
"""

from __future__ import annotations

import re
from pathlib import Path

from health.telemetry import IbPort

SYSFS_INFINIBAND = Path("/sys/class/infiniband")

_RATE = re.compile(r"^\s*(?P<gbps>\d+(?:\.\d+)?)\s*Gb/sec")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _after_code(text: str) -> str:
    """ "4: ACTIVE" -> "ACTIVE"; a value without the numeric code is kept whole."""
    _, sep, name = text.partition(":")
    return name.strip() if sep else text.strip()


def parse_rate_gbps(text: str) -> float:
    """ "400 Gb/sec (4X NDR)" -> 400.0; 0.0 where the rate cannot be read."""
    m = _RATE.match(text)
    return float(m.group("gbps")) if m else 0.0


def read_ib_ports(root: Path = SYSFS_INFINIBAND) -> tuple[IbPort, ...]:
    """Every port of every RDMA device under ``root``; () where there is none."""
    if not root.is_dir():
        return ()
    ports: list[IbPort] = []
    for device in sorted(root.iterdir(), key=lambda p: p.name):
        port_dir = device / "ports"
        if not port_dir.is_dir():
            continue
        for port in sorted(port_dir.iterdir(), key=lambda p: p.name):
            if not port.name.isdigit():
                continue
            ports.append(
                IbPort(
                    device=device.name,
                    port=int(port.name),
                    state=_after_code(_read(port / "state")),
                    phys_state=_after_code(_read(port / "phys_state")),
                    rate_gbps=parse_rate_gbps(_read(port / "rate")),
                    link_layer=_read(port / "link_layer"),
                )
            )
    return tuple(ports)
