"""What a node posts about its power (``POST /api/v1/nodes/{name}/power``), validated
strictly: a node is outside, and a hostile one may send anything.

Bounded GPU count (each index once), finite non-negative watts within what hardware draws,
limits consistent (min <= default, current <= max), short printable text; the outcomes of
the cap actions the node was given last, each naming a cap once."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from health import inputs

# More than any GPU draws or may be limited to (B200: 1 kW), and than any node.
MAX_GPU_WATTS = 5_000.0
MAX_NODE_WATTS = 100_000.0
MAX_GPUS = inputs.MAX_GPU_INDEX + 1
MAX_DETAIL = 500
# A limit read back within this of what was asked is what was asked (NVML works in mW and
# some boards round to the watt).
TOLERANCE_WATTS = 1.0


def _text(max_len: int) -> AfterValidator:
    def check(value: str) -> str:
        inputs.text(value, "text", max_len=max_len)
        return value

    return AfterValidator(check)


Watts = Annotated[float, Field(ge=0, le=MAX_GPU_WATTS, allow_inf_nan=False, strict=True)]
OptWatts = Annotated[float | None, Field(ge=0, le=MAX_GPU_WATTS, allow_inf_nan=False, strict=True)]
Index = Annotated[int, Field(ge=0, le=inputs.MAX_GPU_INDEX, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class GpuPower(_Strict):
    index: Index
    uuid: Annotated[str, Field(max_length=96), _text(96)] = ""
    power_watts: Watts
    limit_watts: OptWatts = None
    enforced_limit_watts: OptWatts = None
    default_limit_watts: OptWatts = None
    min_limit_watts: OptWatts = None
    max_limit_watts: OptWatts = None

    @model_validator(mode="after")
    def _consistent(self) -> GpuPower:
        lo, hi = self.min_limit_watts, self.max_limit_watts
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"GPU {self.index}: min limit {lo:g} W is above max {hi:g} W")
        for what, value in (
            ("limit", self.limit_watts),
            ("default limit", self.default_limit_watts),
        ):
            if value is None:
                continue
            if hi is not None and value > hi + TOLERANCE_WATTS:
                raise ValueError(f"GPU {self.index}: {what} {value:g} W is above max {hi:g} W")
            if lo is not None and value < lo - TOLERANCE_WATTS and value != 0:
                raise ValueError(f"GPU {self.index}: {what} {value:g} W is below min {lo:g} W")
        return self


class GpuLimit(_Strict):
    """One GPU's limit around an action: before it, as clamped, as read back after."""

    index: Index
    before: OptWatts = None
    clamped: OptWatts = None
    after: OptWatts = None


class CapOutcome(_Strict):
    id: Annotated[int, Field(ge=1, le=2**62, strict=True)]
    action: Literal["apply", "revert"]
    ok: bool
    detail: Annotated[str, Field(max_length=MAX_DETAIL), _text(MAX_DETAIL)] = ""
    gpus: Annotated[list[GpuLimit], Field(max_length=MAX_GPUS)] = []

    @model_validator(mode="after")
    def _once(self) -> CapOutcome:
        if len({g.index for g in self.gpus}) != len(self.gpus):
            raise ValueError(f"cap {self.id}: a GPU is named twice")
        return self


class PowerReport(_Strict):
    gpus: Annotated[list[GpuPower], Field(max_length=MAX_GPUS)]
    node_watts: Annotated[
        float | None, Field(ge=0, le=MAX_NODE_WATTS, allow_inf_nan=False, strict=True)
    ] = None
    node_source: Annotated[str, Field(pattern=r"^[a-z0-9-]{0,32}$")] = ""
    node_error: Annotated[str, Field(max_length=200), _text(200)] = ""
    outcomes: Annotated[list[CapOutcome], Field(max_length=64)] = []

    @model_validator(mode="after")
    def _once(self) -> PowerReport:
        if len({g.index for g in self.gpus}) != len(self.gpus):
            raise ValueError("a GPU index is reported twice")
        if len({o.id for o in self.outcomes}) != len(self.outcomes):
            raise ValueError("a cap's outcome is reported twice")
        return self

    @property
    def gpu_watts(self) -> float:
        return sum(g.power_watts for g in self.gpus)
