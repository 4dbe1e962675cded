"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for this
feature's routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"
BAD: dict[str, Any] = {"json": {}}
# Roles: anonymous, viewer, operator, admin-a, member-a, admin-b, node-x (gpu-001).
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    # A node posts its own power (and is answered with its caps); an empty body is refused.
    ("POST", f"{V1}/nodes/{{name}}/power"): (
        f"{V1}/nodes/gpu-001/power",
        BAD,
        (401, 403, 422, 403, 403, 403, 422),
    ),
    ("GET", f"{V1}/nodes/{{name}}/power"): (
        f"{V1}/nodes/gpu-001/power",
        {},
        (401, 200, 200, 403, 403, 403, 200),
    ),
    ("GET", f"{V1}/power/caps"): (f"{V1}/power/caps", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("POST", f"{V1}/power/caps"): (f"{V1}/power/caps", BAD, (401, 403, 422, 403, 403, 403, 403)),
    ("POST", f"{V1}/power/caps/revert"): (
        f"{V1}/power/caps/revert",
        BAD,
        (401, 403, 422, 403, 403, 403, 403),
    ),
}
