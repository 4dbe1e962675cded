"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for learned
floors' routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"

# Roles: anonymous, viewer, operator, admin-a, member-a, admin-b, node-x.
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    ("GET", f"{V1}/floors"): (
        f"{V1}/floors?model=H200",
        {},
        (401, 200, 200, 403, 403, 403, 403),
    ),
    ("GET", f"{V1}/floors/learned"): (
        f"{V1}/floors/learned?model=H200&stack=driver%3D-%20cuda%3D-%20torch%3D-",
        {},
        (401, 200, 200, 403, 403, 403, 200),
    ),
}
