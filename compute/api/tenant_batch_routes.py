"""Many tenant specs planned or applied in one request.

The body is a list of specs, each the JSON of one spec file's ``[tenant]`` table (what
``PUT /tenants/{name}`` takes). The list is checked whole (an object with ``specs`` only,
1 to `MAX_SPECS` of them, each an object, no tenant named twice); each spec is then
checked on its own, so a bad one is refused in the answer (``refused``, with why) and the
others are planned or applied, as `computectl tenants plan|apply DIR` does locally. With
none done, the answer is the refusal itself (a problem document), as for nodes.

Apply is audited twice over: the front door records the request (its rule has
``record=True``), the service each tenant it changed (``tenant.apply``), so an unchanged
re-apply of a thousand tenants adds one row, not a thousand.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compute.api.deps import ActorName, Rt
from compute.api.problems import PROBLEM_RESPONSES
from compute.config import PoolSettings
from compute.errors import ComputeError, InvalidInput
from compute.services.tenants_batch import MAX_SPECS, TenantBatch, apply_many, plan_many
from compute.tenants.spec import TenantModel, tenant_from_model
from compute.validation import first_error
from scheduler.tenants import TenantSpec

tenant_batch_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


class TenantBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    specs: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_SPECS,
        description="Tenant specs, each as PUT /tenants/{name} takes it; at most "
        f"{MAX_SPECS}, each tenant once.",
    )


def _label(i: int, raw: dict[str, Any]) -> str:
    """Who a refused spec is: its name when that is a valid one, else its place."""
    name = raw.get("name")
    try:
        return TenantModel.model_validate({"name": name}).name
    except ValidationError:
        return f"spec {i + 1}"


def _parsed(
    raws: list[dict[str, Any]], pools: list[PoolSettings]
) -> tuple[list[TenantSpec], dict[str, ComputeError]]:
    names = Counter(r.get("name") for r in raws if isinstance(r.get("name"), str))
    twice = sorted(str(n) for n, c in names.items() if c > 1)
    if twice:
        raise InvalidInput(f"tenant(s) named by two specs: {', '.join(twice)}")
    specs: list[TenantSpec] = []
    refused: dict[str, ComputeError] = {}
    for i, raw in enumerate(raws):
        label = _label(i, raw)
        source = f"tenant spec {i + 1} ({label})" if label != f"spec {i + 1}" else label
        try:
            model = TenantModel.model_validate(raw)
            specs.append(tenant_from_model(model, pools, source))
        except ValidationError as exc:
            refused[label] = InvalidInput(f"{source}: {first_error(exc.errors())}")
        except InvalidInput as exc:
            refused[label] = exc
    return specs, refused


def _answer(batch: TenantBatch, refused: dict[str, ComputeError], verb: str) -> dict[str, Any]:
    """The tenants done and refused (the bad specs first); with none done, the refusal."""
    whole = TenantBatch(batch.done, {**refused, **batch.refused})
    error = whole.error(verb)
    if error is not None and not whole.done:
        raise error
    return whole.as_dict()


@tenant_batch_api.post(
    "/tenants/batch/plan", summary="What applying these tenant specs would change"
)
def plan_tenants(rt: Rt, body: TenantBatchRequest) -> dict[str, Any]:
    specs, refused = _parsed(body.specs, rt.settings.effective_pools)
    batch = plan_many(rt.tenants, specs) if specs else TenantBatch()
    return _answer(batch, refused, "planned")


@tenant_batch_api.post(
    "/tenants/batch/apply", summary="Apply many tenant specs (idempotent; each on its own)"
)
def apply_tenants(rt: Rt, actor: ActorName, body: TenantBatchRequest) -> dict[str, Any]:
    specs, refused = _parsed(body.specs, rt.settings.effective_pools)
    batch = apply_many(rt.tenants, specs, actor=actor) if specs else TenantBatch()
    return _answer(batch, refused, "applied")
