"""Many tenant specs planned or applied in one request."""

from __future__ import annotations

from fastapi import APIRouter

from compute.api.problems import PROBLEM_RESPONSES

tenant_batch_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
