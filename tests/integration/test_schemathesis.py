"""schemathesis over the whole OpenAPI, against the app in-process over SQLite: no server
errors, every response as documented (status code, content type, schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from compute.api import create_app
from compute.api.auth import FailureLimiter
from compute.auth.testing import operator_headers
from compute.runtime import Runtime
from compute.store import identities
from compute.testing import make_runtime

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = make_runtime(Path(tmp_path_factory.mktemp("st")), racks=1)
    rt.sweep()
    yield rt
    rt.close()


def test_api_conforms_to_its_openapi(runtime: Runtime) -> None:
    # Each operation in turn, with hypothesis directly: schemathesis's own pytest
    # plugin does not run under this pytest (it reaches into pytest's internals).
    # Authenticated as an operator; a token of its own for each case, so a case that
    # revokes a token (DELETE /tokens/{id}) takes none from the others.
    app = create_app(runtime, limiter=FailureLimiter(limit=1_000_000))
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers=operator_headers(runtime.store)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, headers=operator_headers(runtime.store))

        conforms()
    # The cases went in as the operator, not refused at the door.
    assert any(t.last_used_at is not None for t in identities.tokens(runtime.store))
