"""Tranche acceptance over the API (compute/services/acceptance.py): create a tranche, start
its run, read where it stands and its report (JSON, or one self-contained HTML page)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from compute.api.deps import ActorName, Rt, one_hop
from compute.api.problems import PROBLEM_RESPONSES
from compute.services import acceptance
from compute.services.acceptance_html import render
from compute.validation import ShortText

acceptance_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Name = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Tranche name: 1-64 letters, digits, '.', '_' or '-'.",
    ),
]
# A hostlist may name many nodes in few characters; the service caps the names it makes.
HostList = Annotated[str, Field(min_length=1, max_length=65_536)]


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    nodes: Annotated[list[HostList], Field(min_length=1, max_length=10_000)] | None = Field(
        None, description="Node names or Slurm hostlists (gpu-[001-016])."
    )
    pool: ShortText | None = Field(None, description="Every node of this pool.")
    threshold: float = Field(
        0.95, gt=0, le=1, allow_inf_nan=False, description="Share accepted to go live."
    )

    @model_validator(mode="after")
    def _one_target(self) -> CreateBody:
        if (self.nodes is None) == (self.pool is None):
            raise ValueError("give nodes or a pool (one of them)")
        return self


@acceptance_api.get("/acceptance", summary="Every tranche and where its run stands")
@one_hop
def list_tranches(rt: Rt) -> dict[str, Any]:
    return acceptance.listing(rt.store)


@acceptance_api.post("/acceptance", status_code=201, summary="A new tranche of capacity")
@one_hop
def create_tranche(rt: Rt, actor: ActorName, body: CreateBody) -> dict[str, Any]:
    made = acceptance.create(
        rt.store, rt.clock, body.name, actor, nodes=body.nodes or (), pool=body.pool,
        threshold=body.threshold,
    )  # fmt: skip
    return acceptance.view(made)


@acceptance_api.post(
    "/acceptance/{name}/run",
    summary="Start the tranche's run: the acting control plane carries it out after its sweeps",
)
@one_hop
def run_tranche(rt: Rt, name: Name) -> dict[str, Any]:
    return acceptance.view(acceptance.run(rt.store, rt.clock, name))


@acceptance_api.get("/acceptance/{name}", summary="Where the tranche's run stands")
@one_hop
def get_tranche(rt: Rt, name: Name) -> dict[str, Any]:
    return acceptance.view(acceptance.get(rt.store, name))


@acceptance_api.get(
    "/acceptance/{name}/report",
    summary="The tranche's report: per node pass or fail with evidence, the RMA list, fabric "
    "suspects, the share accepted (JSON; format=html for the page)",
    response_model=None,
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/html": {"schema": {"type": "string"}},
            }
        }
    },
)
@one_hop
def get_report(
    rt: Rt,
    name: Name,
    format: Annotated[Literal["json", "html"], Query(description="json or html")] = "json",
) -> dict[str, Any] | HTMLResponse:
    report = acceptance.report(rt.store, name)
    return HTMLResponse(render(report)) if format == "html" else report


@acceptance_api.get(
    "/acceptance/{name}/report.html",
    summary="The tranche's report as one self-contained HTML page",
    response_class=HTMLResponse,
)
@one_hop
def get_report_html(rt: Rt, name: Name) -> HTMLResponse:
    return HTMLResponse(render(acceptance.report(rt.store, name)))
