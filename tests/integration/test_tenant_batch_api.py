"""`POST /api/v1/tenants/batch/plan|apply` on the simulated datacenter: many specs in one
request, each checked on its own (a bad one refused in the answer, the others done), the
whole body checked strictly, the apply audited at the front door and per changed tenant,
and what the remote client makes of the answers equal to what the local client prints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.runtime import Runtime
from compute.testing import make_runtime

pytestmark = pytest.mark.integration
PLAN, APPLY = "/api/v1/tenants/batch/plan", "/api/v1/tenants/batch/apply"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path)
    runtime.sweep()
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), headers=operator_headers(rt.store)) as c:
        yield c


def spec(name: str, gpus: int = 8, pool: str = "training") -> dict[str, Any]:
    return {"name": name, "users": ["alice"], "quotas": [{"pool": pool, "gpus": gpus}]}


def test_many_specs_in_one_request(client: TestClient, rt: Runtime) -> None:
    specs = [spec("alpha-lab"), spec("beta-lab", 16)]
    planned = client.post(PLAN, json={"specs": specs})
    assert planned.status_code == 200, planned.text
    body = planned.json()
    assert [p["tenant"] for p in body["tenants"]] == ["alpha-lab", "beta-lab"]
    assert body["refused"] == [] and all(p["changes"] for p in body["tenants"])
    assert rt.store.tenants() == []  # a plan changes nothing

    applied = client.post(APPLY, json={"specs": specs}).json()
    assert [p["tenant"] for p in applied["tenants"]] == ["alpha-lab", "beta-lab"]
    assert {t.name for t in rt.store.tenants()} == {"alpha-lab", "beta-lab"}
    again = client.post(APPLY, json={"specs": specs}).json()
    assert [p["changes"] for p in again["tenants"]] == [[], []]
    # Audited: the tenants changed once (the service), each request (the front door).
    actions = [e.action for e in rt.store.audit(limit=50)]
    assert actions.count("tenant.apply") == 2
    assert actions.count(f"POST {APPLY}") == 2
    assert f"POST {PLAN}" not in actions


def test_a_bad_spec_is_refused_and_the_others_are_applied(client: TestClient, rt: Runtime) -> None:
    specs = [
        spec("alpha-lab"),
        spec("beta-lab", pool="nowhere"),
        {"name": "gamma-lab", "quotas": [{"pool": "training", "gpus": "8"}]},
        {"name": 7},
        spec("delta-lab"),
    ]
    answer = client.post(APPLY, json={"specs": specs})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p["tenant"] for p in body["tenants"]] == ["alpha-lab", "delta-lab"]
    refused = {r["tenant"]: (r["code"], r["detail"]) for r in body["refused"]}
    assert list(refused) == ["beta-lab", "gamma-lab", "spec 4"]
    assert refused["beta-lab"][0] == "invalid_input"
    assert "unknown pool 'nowhere'" in refused["beta-lab"][1]
    assert refused["gamma-lab"][1].startswith("tenant spec 3 (gamma-lab): quotas.0.gpus:")
    assert refused["spec 4"][1].startswith("spec 4: name:")
    assert {t.name for t in rt.store.tenants()} == {"alpha-lab", "delta-lab"}


def test_none_done_is_the_refusal_itself(client: TestClient, rt: Runtime) -> None:
    one = client.post(APPLY, json={"specs": [spec("alpha-lab", pool="nowhere")]})
    assert one.status_code == 422 and "unknown pool" in one.json()["detail"]
    two = client.post(PLAN, json={"specs": [spec("a-lab", pool="x"), spec("b-lab", pool="y")]})
    assert two.status_code == 422
    assert two.json()["detail"].startswith("no tenant planned: ")
    assert rt.store.tenants() == []
    # The front door audits a refused change too.
    entries = client.get("/api/v1/audit", params={"limit": 10}).json()["entries"]
    assert [e["result"][:12] for e in entries if e["action"] == f"POST {APPLY}"] == ["refused: 422"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"specs": []},
        {"specs": {}},
        {"specs": ["alpha-lab"]},
        {"specs": [spec("alpha-lab")], "verb": "apply"},
        {"specs": [spec("alpha-lab"), spec("alpha-lab", 4)]},
        {"specs": [spec(f"t{i}") for i in range(10_001)]},
        [spec("alpha-lab")],
    ],
)
def test_the_body_is_checked_whole(client: TestClient, rt: Runtime, body: Any) -> None:
    answer = client.post(APPLY, json=body)
    assert answer.status_code in (413, 422), answer.text
    assert rt.store.tenants() == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "users", "quotas", "internal", "gpu_hours_budget", "x"]),
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=20)
            | st.lists(st.text(max_size=8), max_size=3),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_hostile_specs_are_answered_not_crashed_on(client: TestClient, specs: list[Any]) -> None:
    answer = client.post(PLAN, json={"specs": specs})
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 200:
        body = answer.json()
        assert len(body["tenants"]) + len(body["refused"]) == len(specs)
