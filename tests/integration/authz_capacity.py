"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for this
feature's routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"

# Roles: anonymous, viewer, operator, admin-a, member-a, admin-b, node-x.
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    ("GET", f"{V1}/capacity/forecast"): (
        f"{V1}/capacity/forecast",
        {},
        (401, 200, 200, 403, 403, 403, 403),
    ),
}
