"""Quota requests through the API on the simulated fleet: a tenant-admin asks, an operator
approves (the quota changes on the backend, audited) or declines (nothing changes); tenant
B neither sees nor touches A's; a failed apply leaves the request failed with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.api.auth import FailureLimiter
from compute.auth.testing import bearer, token_for
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant, spec_from_json
from compute.testing import make_runtime

pytestmark = pytest.mark.integration
A, B = "tenant-a", "tenant-b"


def quota_of(rt: Runtime, tenant: str, pool: str = "training") -> int | None:
    record = rt.store.tenant(tenant)
    assert record is not None
    return next((q.gpus for q in spec_from_json(record.spec).quotas if q.pool == pool), None)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient, dict[str, dict[str, str]]]]:
    rt = make_runtime(tmp_path, target_utilisation=0.0)
    rt.sweep()
    rt.sweep()
    for name in (A, B):
        spec = parse_tenant(
            {"name": name, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 8}]},
            rt.settings.effective_pools,
        )
        rt.tenants.apply(spec, actor="test")
    who = {
        "operator": bearer(token_for(rt.store, "operator")),
        "viewer": bearer(token_for(rt.store, "viewer")),
        "admin-a": bearer(token_for(rt.store, "tenant-admin", tenant=A)),
        "member-a": bearer(token_for(rt.store, "tenant-member", tenant=A)),
        "admin-b": bearer(token_for(rt.store, "tenant-admin", tenant=B)),
    }
    with TestClient(create_app(rt, limiter=FailureLimiter(limit=10_000))) as client:
        yield rt, client, who
    rt.close()


def ask(client: TestClient, who: dict[str, str], tenant: str = A, **body: Any) -> Any:
    payload = {"pool": "training", "gpus": 16, "reason": "a bigger training run", **body}
    # Encoded here: a hostile client sends NaN and Infinity too, which the HTTP client's own
    # JSON encoder refuses to write.
    return client.post(
        f"/api/v1/tenants/{tenant}/quota-requests",
        content=json.dumps(payload).encode(),
        headers={**who, "Content-Type": "application/json"},
    )


def test_approved_request_changes_the_quota_on_the_backend_and_is_audited(world) -> None:  # type: ignore[no-untyped-def]
    rt, client, who = world
    r = ask(client, who["admin-a"])
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "pending" and made["current"] == 8 and made["gpus"] == 16
    # One pending request per pool at a time.
    assert ask(client, who["admin-a"], gpus=24).status_code == 409
    # A tenant's people see theirs; operators and viewers see all.
    seen = client.get(f"/api/v1/tenants/{A}/quota-requests", headers=who["member-a"]).json()
    assert [x["id"] for x in seen["requests"]] == [made["id"]]
    assert client.get("/api/v1/quota-requests", headers=who["viewer"]).status_code == 200

    r = client.post(
        f"/api/v1/quota-requests/{made['id']}/approve",
        json={"note": "fine"},
        headers=who["operator"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["decided_by"].startswith("token:")
    assert quota_of(rt, A) == 16 and quota_of(rt, B) == 8
    # The backend holds the new quota: nothing left to apply, and 16 GPUs now fit.
    spec = spec_from_json(rt.store.tenant(A).spec)  # type: ignore[union-attr]
    assert rt.tenants.plan(spec).empty
    dc = rt.datacenter
    assert dc is not None
    with dc.cluster_access() as c:
        assert c.submit(A, "training", 8, 2, hours=2).start is not None
    # Decided once: a second decision is refused.
    again = client.post(f"/api/v1/quota-requests/{made['id']}/decline", headers=who["operator"])
    assert again.status_code == 409
    # A's admin reads the approval in its own audit trail.
    trail = client.get("/api/v1/audit", headers=who["admin-a"]).json()["entries"]
    actions = [(e["action"], e["result"]) for e in trail]
    assert ("quota_request.approve", "ok") in actions
    assert ("quota_request.create", "ok") in actions


def test_declined_request_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    rt, client, who = world
    made = ask(client, who["admin-a"], gpus=32).json()
    before = rt.store.tenant(A)
    r = client.post(
        f"/api/v1/quota-requests/{made['id']}/decline",
        json={"note": "no capacity this month"},
        headers=who["operator"],
    )
    assert r.status_code == 200 and r.json()["state"] == "declined"
    assert r.json()["note"] == "no capacity this month"
    assert rt.store.tenant(A) == before and quota_of(rt, A) == 8


def test_tenants_and_viewers_cannot_decide_and_b_cannot_see_or_ask_for_a(world) -> None:  # type: ignore[no-untyped-def]
    rt, client, who = world
    made = ask(client, who["admin-a"]).json()
    for role in ("viewer", "admin-a", "member-a", "admin-b"):
        for verb in ("approve", "decline"):
            r = client.post(f"/api/v1/quota-requests/{made['id']}/{verb}", headers=who[role])
            assert r.status_code == 403, (role, verb)
    assert ask(client, who["member-a"]).status_code == 403
    assert ask(client, who["admin-b"]).status_code == 403
    assert (
        client.get(f"/api/v1/tenants/{A}/quota-requests", headers=who["admin-b"]).status_code == 403
    )
    assert client.get("/api/v1/quota-requests", headers=who["admin-b"]).status_code == 403
    mine = client.get(f"/api/v1/tenants/{B}/quota-requests", headers=who["admin-b"]).json()
    assert mine["requests"] == []
    assert quota_of(rt, A) == 8


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"pool": "nope"}, "unknown pool"),
        ({"gpus": -1}, "gpus"),
        ({"gpus": 8}, "already 8"),
        ({"reason": ""}, "reason"),
        ({"reason": "tab\there"}, "reason"),
        ({"gpus": "16"}, "gpus"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(world, body, why) -> None:  # type: ignore[no-untyped-def]
    _, client, who = world
    r = ask(client, who["admin-a"], **body)
    assert 400 <= r.status_code < 500 and why in r.json()["detail"], r.text
    assert client.get("/api/v1/quota-requests", headers=who["operator"]).json()["requests"] == []


def test_a_failed_apply_leaves_the_request_failed_with_its_reason(world) -> None:  # type: ignore[no-untyped-def]
    rt, client, who = world
    made = ask(client, who["admin-a"]).json()
    # The tenant went away between the ask and the decision: nothing to apply to.
    rt.tenants.delete(A, actor="test", force=True)
    r = client.post(f"/api/v1/quota-requests/{made['id']}/approve", headers=who["operator"])
    assert r.status_code == 404, r.text
    listed = client.get("/api/v1/quota-requests", headers=who["operator"]).json()["requests"]
    assert listed[0]["state"] == "failed" and "deleted" in listed[0]["note"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    pool=st.one_of(st.sampled_from(["training", "inference"]), st.text(max_size=80)),
    gpus=st.one_of(st.integers(-5, 200_000), st.floats(allow_nan=True), st.text(max_size=8)),
    reason=st.text(max_size=300),
)
@example(pool="training", gpus=float("nan"), reason="x")
@example(pool="training", gpus=float("inf"), reason="x")
def test_any_body_is_stored_as_given_or_refused_with_nothing_stored(
    world, pool: object, gpus: object, reason: str
) -> None:  # type: ignore[no-untyped-def]
    rt, client, who = world
    before = client.get("/api/v1/quota-requests", headers=who["operator"]).json()["requests"]
    r = ask(client, who["admin-a"], pool=pool, gpus=gpus, reason=reason)
    assert r.status_code < 500, r.text
    after = client.get("/api/v1/quota-requests", headers=who["operator"]).json()["requests"]
    if r.status_code == 201:
        made = r.json()
        # As given: a reason is one line of text in any script (format marks and code points
        # not yet assigned included: health.inputs.text), whitespace runs made one space.
        assert (made["pool"], made["gpus"]) == (pool, gpus)
        assert made["reason"] == " ".join(reason.split())
        assert len(after) == len(before) + 1
        # Free the pool's one pending slot for the next example.
        client.post(f"/api/v1/quota-requests/{made['id']}/decline", headers=who["operator"])
    else:
        assert r.status_code in (403, 404, 409, 422) and after == before
    assert quota_of(rt, A) == 8
