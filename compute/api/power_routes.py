"""Power over the API: a node posts its readings (and is answered with the caps to apply
or restore), operators cap and revert GPUs by node or rack, readers see caps and readings.

Who may do what is the authorization table's (compute/auth/rules_power.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from compute.api.deps import ActorName, Rt, one_hop, report_hop
from compute.api.problems import PROBLEM_RESPONSES
from compute.services import power_caps, power_views
from compute.services.power_report import MAX_GPU_WATTS, MAX_GPUS, PowerReport
from compute.validation import NodeName, Reason, ShortText

power_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Node = Annotated[NodeName, Path(description="Node name, as its workload manager knows it.")]
MAX_TARGETS = 10_000
MAX_DURATION_SECONDS = 366 * 86_400.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CapBody(_Body):
    nodes: Annotated[list[NodeName], Field(min_length=1, max_length=MAX_TARGETS)] | None = None
    rack: ShortText | None = Field(None, description="Every node of this rack.")
    watts: float = Field(gt=0, le=MAX_GPU_WATTS, allow_inf_nan=False, description="Per GPU.")
    gpus: (
        Annotated[
            list[Annotated[int, Field(ge=0, lt=MAX_GPUS)]], Field(min_length=1, max_length=MAX_GPUS)
        ]
        | None
    ) = Field(None, description="GPU indices (default: every GPU of each node).")
    reason: Reason
    duration_seconds: float | None = Field(
        None, gt=0, le=MAX_DURATION_SECONDS, allow_inf_nan=False,
        description="Reverted by itself after this; default [power] default_cap_hours.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_target(self) -> CapBody:
        if (self.nodes is None) == (self.rack is None):
            raise ValueError("give nodes or a rack (one of them)")
        return self


class RevertBody(_Body):
    nodes: Annotated[list[NodeName], Field(min_length=1, max_length=MAX_TARGETS)] | None = None
    rack: ShortText | None = None
    caps: (
        Annotated[
            list[Annotated[int, Field(ge=1, le=2**62)]], Field(min_length=1, max_length=MAX_TARGETS)
        ]
        | None
    ) = None
    reason: Reason

    @model_validator(mode="after")
    def _one_target(self) -> RevertBody:
        if sum(x is not None for x in (self.nodes, self.rack, self.caps)) != 1:
            raise ValueError("give caps, nodes or a rack (one of them)")
        return self


@power_api.post(
    "/nodes/{name}/power",
    summary="A node's power (per GPU draw and limits, the BMC's reading) and the outcomes "
    "of the caps it applied; answered with the caps to apply or restore now",
)
@report_hop
def post_power(rt: Rt, actor: ActorName, name: Node, body: PowerReport) -> dict[str, Any]:
    return power_caps.node_exchange(rt, name, body, actor)


@power_api.get("/nodes/{name}/power", summary="A node's power: readings, limits, caps, series")
@one_hop
def get_power(rt: Rt, name: Node) -> dict[str, Any]:
    return power_views.show(rt, name)


@power_api.get("/power/caps", summary="GPU power caps: the active ones, or all, oldest first")
@one_hop
def list_caps(
    rt: Rt,
    all: bool = False,
    node: NodeName | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    return {"caps": power_views.listed(rt, active=not all, node=node, limit=limit)}


@power_api.post(
    "/power/caps",
    status_code=201,
    summary="Cap GPUs' power on nodes or a rack (applied by each node's agent, audited)",
)
@one_hop
def create_caps(rt: Rt, actor: ActorName, body: CapBody) -> dict[str, Any]:
    made = power_views.cap(
        rt, nodes=body.nodes, rack=body.rack, watts=body.watts, gpus=body.gpus,
        reason=body.reason, duration_seconds=body.duration_seconds, actor=actor,
    )  # fmt: skip
    return {"caps": made}


@power_api.post(
    "/power/caps/revert",
    summary="Revert caps (by id, node or rack): each node restores the limits before them",
)
@one_hop
def revert_caps(rt: Rt, actor: ActorName, body: RevertBody) -> dict[str, Any]:
    done = power_views.revert(
        rt, nodes=body.nodes, rack=body.rack, cap_ids=body.caps, reason=body.reason, actor=actor
    )
    return {"caps": done}
