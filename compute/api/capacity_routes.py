"""Capacity planning: forecast, headroom per rack and room, what-if."""

from __future__ import annotations

from fastapi import APIRouter

from compute.api.problems import PROBLEM_RESPONSES

capacity_api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
