"""Learned burn-in floors: how floors moved per GPU model and software stack."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services.floors_report import report

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
