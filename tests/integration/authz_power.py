"""Rows of the authorization matrix (tests/integration/test_authz_matrix.py) for this
feature's routes: (method, template) -> (path, request kwargs, status per role)."""

from __future__ import annotations

from typing import Any

ROWS: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[int, ...]]] = {}
