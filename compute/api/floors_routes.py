"""Learned burn-in floors: how floors moved per GPU model and software stack, and the floors
a node judges its own burn-in with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services.floors_report import report
from health.floor_judging import MAX_STACK, MODEL_PATTERN, STACK_PATTERN

floors_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


@floors_api.get(
    "/floors",
    summary="Burn-in floors per GPU model, software stack and check: samples, the fixed "
    "floor, the learned one, and the fleet's median now, a week and a month ago",
)
def get_floors(
    rt: Rt,
    model: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            description="Only this GPU model (H200).",
        ),
    ] = None,
) -> dict[str, Any]:
    return report(rt.store, model)


@floors_api.get(
    "/floors/learned",
    summary="The learned burn-in floors a node of this GPU model and software stack judges its "
    "burn-in with: the ones ingest judges its figures with (none where the fixed floor stands)",
)
def get_learned_floors(
    rt: Rt,
    model: Annotated[
        str,
        Query(
            min_length=1,
            max_length=64,
            pattern=MODEL_PATTERN,
            description="The GPU model, as the control plane's inventory names it (H100-SXM).",
        ),
    ],
    stack: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_STACK,
            pattern=STACK_PATTERN,
            description="The software stack, as burn-in results name it "
            "('driver=580.159.04 cuda=13.0 torch=2.11.0+cu130').",
        ),
    ],
) -> dict[str, Any]:
    return rt.ingest.floors.for_node(model, stack)
