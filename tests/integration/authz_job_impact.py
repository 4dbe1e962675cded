"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for job
impact's routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    # A tenant's incidents: its admin and members, operators and viewers; not another
    # tenant's admin, not a node.
    ("GET", "/api/v1/tenants/{name}/incidents"): (
        "/api/v1/tenants/tenant-a/incidents?month=2026-01",
        {},
        (401, 200, 200, 200, 200, 403, 403),
    ),
}
