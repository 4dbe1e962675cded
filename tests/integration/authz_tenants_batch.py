"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for this
feature's routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"
# No specs: refused after the front door (422), so an allowed role changes nothing.
_EMPTY: dict[str, Any] = {"json": {"specs": []}}
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    ("POST", f"{V1}/tenants/batch/plan"): (
        f"{V1}/tenants/batch/plan",
        _EMPTY,
        (401, 403, 422, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/tenants/batch/apply"): (
        f"{V1}/tenants/batch/apply",
        _EMPTY,
        (401, 403, 422, 403, 403, 403, 403),
    ),
}
