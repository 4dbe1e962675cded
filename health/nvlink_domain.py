"""A GPU's NVLink domain, as NVML's fabric info reports it (Grace Blackwell and later).

On an NVL72 rack the 72 GPUs of its 18 compute trays share one NVLink domain through
the rack's NVLink switch trays: NVML names it by the fabric manager's cluster UUID and a
clique id, and says whether the GPU's registration with the fabric completed and how it
went. A GPU of an HGX board (H100, H200, B200) answers "not supported": it has no
domain beyond its node, and nothing here is judged for it.

What one node reports folds into one domain name, ``<cluster uuid>/<clique id>``, kept
with the nvlink check's values, so the node's record carries it without a schema change.

Its workload manager may place it too (compute/services/listed_domains.py): Kubernetes by
the GPU feature discovery's clique label (the same name), Slurm by a topology/block block
(``block/<name>`` until its nodes' own reports name the domain). ``domain_of`` is the one
answer to "which domain is this node in": its own report wins, the listing fills in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from health.result import Value
from health.telemetry import NodeSnapshot

if TYPE_CHECKING:
    from health.policy.model import NodeHealth

# nvmlGpuFabricState_t: part of NVML's ABI.
FABRIC_NOT_SUPPORTED = 0
FABRIC_NOT_STARTED = 1
FABRIC_IN_PROGRESS = 2
FABRIC_COMPLETED = 3
STATE_NAMES = {
    FABRIC_NOT_STARTED: "not_started",
    FABRIC_IN_PROGRESS: "in_progress",
    FABRIC_COMPLETED: "completed",
}
# healthMask bits 0-1 (NVML_GPU_FABRIC_HEALTH_MASK_*_DEGRADED_BW): 1 means degraded.
_DEGRADED_BW_MASK = 0x3
_DEGRADED_BW_TRUE = 1
NVML_SUCCESS = 0

DOMAIN_NAME = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9]{1,10}"
)
# A workload manager's block named as scheduler/topology.py's block_domain writes it; at most
# 70 characters, well within an incident's scope (128).
BLOCK_DOMAIN = re.compile(r"block/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
NO_CLUSTER = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class GpuFabric:
    """One GPU's fabric info. ``status`` is NVML's return code of the registration."""

    index: int
    cluster_uuid: str
    clique_id: int
    state: str
    status: int = NVML_SUCCESS
    degraded_bandwidth: bool = False

    @property
    def domain(self) -> str:
        """``<cluster uuid>/<clique>``; "" for a GPU in no cluster (all-zero UUID)."""
        if self.cluster_uuid == NO_CLUSTER or not self.cluster_uuid:
            return ""
        return f"{self.cluster_uuid}/{self.clique_id}"

    @property
    def healthy(self) -> bool:
        return (
            self.state == "completed"
            and self.status == NVML_SUCCESS
            and not (self.degraded_bandwidth)
        )

    def problem(self) -> str:
        """What is wrong, in an operator's words ("" when healthy)."""
        if self.state != "completed":
            return f"GPU {self.index}: NVLink fabric registration {self.state.replace('_', ' ')}"
        if self.status != NVML_SUCCESS:
            return f"GPU {self.index}: NVLink fabric registration failed (NVML error {self.status})"
        if self.degraded_bandwidth:
            return f"GPU {self.index}: NVLink fabric bandwidth degraded"
        return ""


@dataclass(frozen=True, slots=True)
class FabricSnapshot(NodeSnapshot):
    """A snapshot with its GPUs' fabric info (empty where NVML has none)."""

    fabric: tuple[GpuFabric, ...] = ()


def fabric_of(snapshot: NodeSnapshot) -> tuple[GpuFabric, ...]:
    return snapshot.fabric if isinstance(snapshot, FabricSnapshot) else ()


def uuid_text(raw: Sequence[int] | bytes) -> str:
    """NVML's 16-byte cluster UUID as the usual 8-4-4-4-12 hex text."""
    h = bytes(int(b) & 0xFF for b in raw).hex()
    if len(h) != 32:
        return ""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def gpu_fabric(index: int, info: object) -> GpuFabric | None:
    """A GPU's fabric from NVML's nvmlGpuFabricInfo(V)_t; None where it has no fabric."""
    state = int(getattr(info, "state", FABRIC_NOT_SUPPORTED))
    if state not in STATE_NAMES:
        return None
    mask = int(getattr(info, "healthMask", 0))
    return GpuFabric(
        index=index,
        cluster_uuid=uuid_text(getattr(info, "clusterUuid", b"")),
        clique_id=int(getattr(info, "cliqueId", 0)),
        state=STATE_NAMES[state],
        status=int(getattr(info, "status", NVML_SUCCESS)),
        degraded_bandwidth=(mask & _DEGRADED_BW_MASK) == _DEGRADED_BW_TRUE,
    )


def node_domain(fabric: Sequence[GpuFabric]) -> str:
    """The domain the node's GPUs share; "" if none reported one. GPUs of one node in
    different domains is a misconfiguration: the first GPU's is taken, and the check says so."""
    for f in fabric:
        if f.domain:
            return f.domain
    return ""


def believable_domain(value: object) -> str:
    """``value`` when it is a domain name as this module (or a workload manager's listing)
    writes it, else "" (unknown): what a node posted is outside input."""
    if isinstance(value, str) and (DOMAIN_NAME.fullmatch(value) or BLOCK_DOMAIN.fullmatch(value)):
        return value
    return ""


def fabric_named(value: object) -> bool:
    """``value`` names a domain as NVML does (``<cluster uuid>/<clique>``), not a block."""
    return isinstance(value, str) and DOMAIN_NAME.fullmatch(value) is not None


def recorded_domain(last_values: Mapping[str, Mapping[str, Value]]) -> str:
    """The domain the node's own last nvlink check reported (NVML); "" if none."""
    return believable_domain(last_values.get("nvlink", {}).get("nvlink_domain"))


def placed_domain(reported: object, listed: object) -> str:
    """Which domain a node is in: the one its own GPUs reported, else the one its workload
    manager lists it in; "" if neither is believable."""
    return believable_domain(reported) or believable_domain(listed)


def domain_of(health: NodeHealth) -> str:
    """Which NVLink domain the node is in, as its record says ("" if none): the one place
    the domain judgement (compute/services/nvlink_domains.py) and the brake's scopes ask."""
    return placed_domain(
        health.last_values.get("nvlink", {}).get("nvlink_domain"), health.listed_domain
    )
