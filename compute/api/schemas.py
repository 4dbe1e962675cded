"""Request and response bodies (apart from the domain types and the tables)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=180)
    now: bool = Field(False, description="Take the node down now, ending running jobs.")


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = Field(False, description="Lift a drain someone else made.")
    skip_burn_in: bool = Field(False, description="Return to service without burn-in.")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
