"""schemathesis over the acceptance routes alone (the whole API's run is
test_schemathesis.py): no server error, every answer as documented, with tranches that exist
(one judged, one created) as well as names that do not."""

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
from compute.services import acceptance
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
    rt = make_runtime(Path(tmp_path_factory.mktemp("st")), racks=1, target_utilisation=0.0)
    rt.sweep()
    names = [n.name for n in rt.store.nodes()][:4]
    acceptance.create(rt.store, rt.clock, "a", "test", names)
    acceptance.create(rt.store, rt.clock, "b", "test", names)
    acceptance.run(rt.store, rt.clock, "a")
    for _ in range(6):
        rt.sweep()
    yield rt
    rt.close()


def test_acceptance_routes_conform_to_their_openapi(runtime: Runtime) -> None:
    app = create_app(runtime, limiter=FailureLimiter(limit=1_000_000))
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers=operator_headers(runtime.store)
    )
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path.startswith("/api/v1/acceptance")
    ]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, headers=operator_headers(runtime.store))

        conforms()
