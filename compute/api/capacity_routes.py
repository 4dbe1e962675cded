"""Capacity planning: forecast, headroom per rack and room, what-if."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services.capacity_plan import MAX_ADDITIONS, parse_addition, plan

capacity_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


@capacity_api.get(
    "/capacity/forecast",
    summary="Free GPUs by pool and model, allocation trend, days until full, power headroom "
    "per rack and room, N-1 headroom, and what adding nodes to a room would draw",
)
def get_capacity_forecast(
    rt: Rt,
    add: Annotated[
        list[str],
        Query(
            max_length=MAX_ADDITIONS,
            description="NODES:MODEL:ROOM (4:H100-SXM:hall-a): what adding them would draw.",
        ),
    ] = [],  # noqa: B006 - FastAPI copies a query list's default
) -> dict[str, Any]:
    adds = [parse_addition(a) for a in add]
    view: dict[str, Any] = plan(rt.store, rt.settings.topology, adds)
    return view
