"""The fleet's SDC reference, which a node's check asks for after its known-answer run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from compute.api.deps import Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.services.sdc_reference import reference
from health.checks.sdc import STACK_KEY_CHARS

sdc_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


@sdc_api.get(
    "/sdc/reference",
    summary="The checksum most passing nodes of this GPU model and software stack reported "
    "for the SDC check's known-answer computation (checksum null where there is none yet)",
)
def get_sdc_reference(
    rt: Rt,
    model: Annotated[
        str,
        Query(
            min_length=1,
            max_length=64,
            # As NVML names it ("NVIDIA H200") or the catalogue does ("H100-SXM").
            pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._()+/-]*$",
            description="The GPU model, as the node's SDC result names it.",
        ),
    ],
    stack: Annotated[
        str,
        Query(
            min_length=STACK_KEY_CHARS,
            max_length=STACK_KEY_CHARS,
            pattern=r"^[0-9a-f]+$",
            description="The software stack key (16 hex digits) the node's SDC result names.",
        ),
    ],
) -> dict[str, Any]:
    cfg = rt.settings.node_check
    ref = reference(
        rt.store,
        rt.clock.now(),
        model,
        stack,
        cfg.sdc_reference_days,
        cfg.sdc_reference_min_nodes,
    )
    return ref.view()
