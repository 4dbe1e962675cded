"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for lemons'
routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"

# Roles: anonymous, viewer, operator, admin-a, member-a, admin-b, node-x.
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    # An operator gets past the door to the body's check (no reason: 422); node X may not
    # clear its own mark.
    ("POST", f"{V1}/nodes/{{name}}/lemon/clear"): (
        f"{V1}/nodes/gpu-001/lemon/clear",
        {"json": {}},
        (401, 403, 422, 403, 403, 403, 403),
    ),
}
