"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for tranche
acceptance: (method, template) -> (path, request kwargs, status per role). The tranche named
does not exist: a role let in is answered 404, one kept out 401/403 before any lookup."""

from __future__ import annotations

from typing import Any

V1 = "/api/v1"
_NONE = f"{V1}/acceptance/no-such-tranche"

# Roles: anonymous, viewer, operator, admin-a, member-a, admin-b, node-x.
ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    ("GET", f"{V1}/acceptance"): (f"{V1}/acceptance", {}, (401, 200, 200, 403, 403, 403, 403)),
    ("POST", f"{V1}/acceptance"): (
        f"{V1}/acceptance",
        {"json": {"name": "authz", "pool": "no-such-pool"}},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", f"{V1}/acceptance/{{name}}/run"): (
        f"{_NONE}/run",
        {},
        (401, 403, 404, 403, 403, 403, 403),
    ),
    ("GET", f"{V1}/acceptance/{{name}}"): (_NONE, {}, (401, 404, 404, 403, 403, 403, 403)),
    ("GET", f"{V1}/acceptance/{{name}}/report"): (
        f"{_NONE}/report",
        {},
        (401, 404, 404, 403, 403, 403, 403),
    ),
    ("GET", f"{V1}/acceptance/{{name}}/report.html"): (
        f"{_NONE}/report.html",
        {},
        (401, 404, 404, 403, 403, 403, 403),
    ),
}
