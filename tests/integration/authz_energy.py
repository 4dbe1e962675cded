"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for this
feature's routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {
    # The fleet's billing export: operators and viewers; no tenant, no node.
    ("GET", "/api/v1/usage"): (
        "/api/v1/usage?format=csv",
        {},
        (401, 200, 200, 403, 403, 403, 403),
    ),
}
