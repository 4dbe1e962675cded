"""NVIDIA XID codes: what each one means for the node, and parsing of kernel log lines.

Source for every entry: NVIDIA, "XID Errors" (GPU deployment and management
documentation, docs.nvidia.com/deploy/xid-errors), the table of XIDs with
their causes and recommended actions. ``Action`` condenses the recommended
action: APP (the application's fault; the node is fine), RESET (reset the GPU
or reboot the node before new work), DRAIN (take the node out now), RMA
(hardware to be replaced).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    APP = "app"
    RESET = "reset"
    DRAIN = "drain"
    RMA = "rma"


@dataclass(frozen=True, slots=True)
class XidClass:
    code: int
    name: str
    action: Action
    fatal: bool


_TABLE: tuple[XidClass, ...] = (
    XidClass(13, "graphics engine exception", Action.APP, False),
    XidClass(31, "GPU memory page fault", Action.APP, False),
    XidClass(32, "invalid or corrupted push buffer stream", Action.APP, False),
    XidClass(38, "driver firmware error", Action.RESET, False),
    XidClass(43, "GPU stopped processing", Action.APP, False),
    XidClass(45, "preemptive cleanup, due to previous errors", Action.APP, False),
    XidClass(48, "double bit ECC error", Action.RESET, True),
    XidClass(61, "internal micro-controller breakpoint/warning", Action.RESET, False),
    XidClass(62, "internal micro-controller halt", Action.RESET, True),
    XidClass(63, "ECC page retirement or row remapping recording event", Action.APP, False),
    XidClass(64, "ECC page retirement or row remapper recording failure", Action.RMA, True),
    XidClass(68, "NVDEC0 exception", Action.APP, False),
    XidClass(69, "graphics engine class error", Action.APP, False),
    XidClass(74, "NVLink error", Action.RESET, True),
    XidClass(79, "GPU has fallen off the bus", Action.DRAIN, True),
    XidClass(92, "high single-bit ECC error rate", Action.APP, False),
    XidClass(94, "contained ECC error", Action.APP, False),
    XidClass(95, "uncontained ECC error", Action.RESET, True),
    XidClass(109, "context switch timeout", Action.APP, False),
    XidClass(119, "GSP RPC timeout", Action.RESET, True),
    XidClass(120, "GSP error", Action.RESET, True),
    XidClass(121, "C2C link error", Action.RESET, False),
    XidClass(123, "SPI PMU RPC write failure", Action.RESET, False),
    XidClass(140, "unrecovered ECC error", Action.RESET, True),
    XidClass(143, "GPU initialization failure", Action.RMA, True),
    XidClass(154, "GPU recovery action changed", Action.RESET, True),
)

XID_TABLE: dict[int, XidClass] = {x.code: x for x in _TABLE}


def classify(code: int) -> XidClass | None:
    """The table entry for ``code``; None for a code the table does not know."""
    return XID_TABLE.get(code)


# e.g. "NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus."
#      "NVRM: Xid (PCI:0000:17:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable ..."
_XID_LINE = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<bus>[0-9A-Fa-f:.]+)\): (?P<code>\d+),\s*(?P<msg>.*)$"
)


@dataclass(frozen=True, slots=True)
class ParsedXid:
    pci_bus_id: str
    code: int
    message: str
    at: datetime | None


_ISO_PREFIX = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)\s"
)


def parse_xid_line(line: str) -> ParsedXid | None:
    """Parse one kernel log line; None when it is not an XID report."""
    m = _XID_LINE.search(line)
    if m is None:
        return None
    at: datetime | None = None
    ts = _ISO_PREFIX.match(line)
    if ts is not None:
        try:
            at = datetime.fromisoformat(ts.group("ts").replace(",", "."))
        except ValueError:
            at = None
    return ParsedXid(
        pci_bus_id=m.group("bus").lower(),
        code=int(m.group("code")),
        message=m.group("msg").strip(),
        at=at,
    )
