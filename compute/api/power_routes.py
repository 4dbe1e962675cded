"""Power: node readings, GPU power caps and their reverts."""

from __future__ import annotations

from fastapi import APIRouter

from compute.api.problems import PROBLEM_RESPONSES

power_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
