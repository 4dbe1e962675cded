"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for the SDC
check's fleet reference: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"

# Roles: anonymous, viewer, operator, admin-a, member-a, admin-b, node-x.
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    ("GET", f"{V1}/sdc/reference"): (
        f"{V1}/sdc/reference?model=NVIDIA%20H200&stack=0123456789abcdef",
        {},
        (401, 200, 200, 403, 403, 403, 200),
    ),
}
