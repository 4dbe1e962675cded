"""Lemons: an operator clears a node's lemon mark (compute/services/lemon_clear.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from compute.api.deps import ActorName, Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services.lemon_clear import clear, cleared_view
from compute.validation import NodeName, Reason

lemon_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Node = Annotated[NodeName, Path(description="Node name, as its workload manager knows it.")]


class LemonClearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Reason = Field(description="Why (the board replaced, an RMA returned): recorded.")


@lemon_api.post(
    "/nodes/{name}/lemon/clear",
    summary="Clear a node's lemon mark: the count of repeats starts again (history is kept)",
)
def clear_lemon(rt: Rt, actor: ActorName, name: Node, body: LemonClearRequest) -> dict[str, Any]:
    return cleared_view(clear(rt.store, name, body.reason, actor, rt.clock.now()))
