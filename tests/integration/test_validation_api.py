"""Arbitrary requests against the API over SQLite: never a server error, always a problem
document when refused, and a refused request changes neither the store nor the backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.runtime import Runtime
from compute.store import audit_log
from compute.testing import EPOCH, make_runtime
from compute.validation import MAX_BODY_BYTES
from compute.views import node_view

pytestmark = pytest.mark.integration

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path_factory.mktemp("api"))
    runtime.sweep()
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(
        create_app(rt), raise_server_exceptions=False, headers=operator_headers(rt.store)
    ) as c:
        yield c


def snapshot(rt: Runtime) -> Any:
    """Everything a request could change: the store's rows and the backends' view."""
    backend = sorted(
        (s.name, s.drain, s.reason)
        for p in rt.settings.effective_pools
        for s in rt.backends.for_pool(p.name).list_nodes()
    )
    return (
        rt.store.count_results(),
        [node_view(n) for n in rt.store.nodes()],
        [e.id for e in rt.store.events(limit=100_000)],
        [(t.name, t.state, t.spec) for t in rt.store.tenants()],
        # A refusal is audited (who tried what, from where); nothing else changes.
        [a.id for a in audit_log.entries(rt.store, limit=100_000) if a.result == "ok"],
        backend,
    )


def seg(value: str) -> str:
    """A path segment for any text: the bytes it would have, percent-encoded."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def send(payload: Any) -> dict[str, Any]:
    """Request arguments for any payload: json.dumps escapes lone surrogates and writes
    NaN/Infinity, as a careless client would."""
    return {
        "content": json.dumps(payload).encode(),
        "headers": {"content-type": "application/json"},
    }


def assert_refusal_or_success(r: Any) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["status"] == r.status_code and "\n" not in body["detail"]


text = st.text(max_size=300) | st.sampled_from(["bad\udcff", "a\x00b", "x" * 10_000, "", " "])
numbers = st.integers() | st.floats() | st.booleans() | st.sampled_from([2**64, -(2**70)])
dates = st.datetimes(timezones=st.just(EPOCH.tzinfo)).map(lambda d: d.isoformat()) | st.just(
    "9999-12-31T23:59:59-01:00"
)
scalars = st.none() | text | numbers | dates
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=15,
)
result = st.fixed_dictionaries(
    {"check": st.just("xid") | text, "status": st.sampled_from(["pass", "fail"]) | text},
    optional={
        "version": st.just("1") | text,
        "at": dates | st.just(EPOCH.isoformat()),
        "evidence": text,
        "values": st.dictionaries(text, scalars, max_size=4),
        "gpus": st.lists(numbers, max_size=3),
        "fatal": st.booleans() | numbers,
        "node": st.just("gpu-003") | text,
    },
)


@FAST
@given(payload=st.lists(result, max_size=3) | anything)
def test_any_health_report(client: TestClient, rt: Runtime, payload: Any) -> None:
    before = snapshot(rt)
    r = client.post("/api/v1/nodes/gpu-003/health", **send(payload))
    assert_refusal_or_success(r)
    if r.status_code != 202:
        assert snapshot(rt) == before
    assert client.get("/api/v1/nodes/gpu-003").status_code == 200


@FAST
@given(reason=text, now=st.booleans() | scalars, name=st.just("gpu-005") | text)
def test_any_drain(client: TestClient, rt: Runtime, reason: Any, now: Any, name: str) -> None:
    before = snapshot(rt)
    r = client.post(f"/api/v1/nodes/{seg(name)}/drain", **send({"reason": reason, "now": now}))
    assert_refusal_or_success(r)
    if r.status_code != 200:
        assert snapshot(rt) == before
    else:
        client.post(f"/api/v1/nodes/{seg(name)}/resume", json={"skip_burn_in": True})


@pytest.mark.parametrize("flag", ["on", "yes", 1, "true", None, [True]])
def test_switches_that_end_work_take_only_true_or_false(
    client: TestClient, rt: Runtime, flag: Any
) -> None:
    """ "now" ends running jobs and "skip_burn_in" returns a node unchecked: a string or a
    number must never stand for true."""
    before = snapshot(rt)
    r = client.post("/api/v1/nodes/gpu-005/drain", json={"reason": "cable", "now": flag})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    for key in ("force", "skip_burn_in"):
        r = client.post("/api/v1/nodes/gpu-005/resume", json={key: flag})
        assert r.status_code == 422
    assert snapshot(rt) == before


@FAST
@given(
    spec=st.fixed_dictionaries(
        {"name": st.just("borealis-ai") | text},
        optional={
            "users": st.lists(st.just("alice") | text, max_size=3) | anything,
            "quotas": st.lists(
                st.fixed_dictionaries({"pool": st.just("training") | text, "gpus": numbers}),
                max_size=2,
            )
            | anything,
            "gpu_hours_budget": numbers | scalars,
            "max_wall_time_hours": numbers | scalars,
        },
    )
)
def test_any_tenant_spec(client: TestClient, rt: Runtime, spec: dict[str, Any]) -> None:
    before = snapshot(rt)
    assert_refusal_or_success(client.post("/api/v1/tenants/plan", **send(spec)))
    r = client.put("/api/v1/tenants/borealis-ai", **send(spec))
    assert_refusal_or_success(r)
    if r.status_code != 200:
        assert snapshot(rt) == before
    else:
        assert client.get("/api/v1/tenants/borealis-ai").status_code == 200
        assert client.delete("/api/v1/tenants/borealis-ai").status_code == 200


@FAST
@given(
    path=text,
    query=st.dictionaries(st.sampled_from(["pool", "state", "node", "kind", "limit"]), text),
)
def test_any_read(client: TestClient, path: str, query: dict[str, str]) -> None:
    qs = "&".join(f"{k}={seg(v)}" for k, v in query.items())
    for route in ("/api/v1/nodes", "/api/v1/events", "/api/v1/nodes/{}", "/api/v1/tenants/{}"):
        assert_refusal_or_success(client.get(f"{route.format(seg(path))}?{qs}"))


def test_a_bad_byte_in_a_drain_reason_changes_nothing(client: TestClient, rt: Runtime) -> None:
    before = snapshot(rt)
    # What a shell's $'bad\xff' becomes: invalid UTF-8 on the wire.
    r = client.post(
        "/api/v1/nodes/gpu-006/drain",
        content=b'{"reason": "bad\xff"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (400, 422) and snapshot(rt) == before
    r = client.post("/api/v1/nodes/gpu-006/drain", json={"reason": "x" * 10_000})
    assert r.status_code == 422 and "at most 160" in r.json()["detail"]
    assert snapshot(rt) == before


def test_results_from_the_future_or_past_retention_are_refused(
    client: TestClient, rt: Runtime
) -> None:
    base = {"check": "xid", "version": "1", "status": "pass"}
    for at in ("2126-01-05T08:00:00+00:00", "1969-12-31T23:59:59+00:00"):
        r = client.post("/api/v1/nodes/gpu-007/health", json=[{**base, "at": at}])
        assert r.status_code == 422 and "'at'" in r.json()["detail"], r.text


def test_a_result_naming_a_gpu_the_node_does_not_have_is_refused(
    client: TestClient, rt: Runtime
) -> None:
    before = snapshot(rt)
    at = rt.clock.now().isoformat()
    bad = {"check": "xid", "version": "1", "status": "fail", "at": at, "gpus": [31]}
    r = client.post("/api/v1/nodes/gpu-007/health", json=[bad])
    assert r.status_code == 422 and "no GPU 31" in r.json()["detail"], r.text
    assert snapshot(rt) == before


def test_tenant_limits_that_would_round_to_zero_are_refused(client: TestClient) -> None:
    for field in ("gpu_hours_budget", "max_wall_time_hours"):
        r = client.post("/api/v1/tenants/plan", json={"name": "tiny-one", field: 1e-9})
        assert r.status_code == 422 and field in r.json()["detail"], r.text


def test_bodies_over_the_limit_are_refused_before_parsing(client: TestClient, rt: Runtime) -> None:
    before = snapshot(rt)
    big = b"[" + b"1," * (MAX_BODY_BYTES // 2) + b"1]"
    r = client.post(
        "/api/v1/nodes/gpu-003/health", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    r = client.post(
        "/api/v1/nodes/gpu-003/health",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413, r.text
    deep = b"[" * 100_000 + b"]" * 100_000
    r = client.post(
        "/api/v1/nodes/gpu-003/health", content=deep, headers={"content-type": "application/json"}
    )
    assert r.status_code in (400, 422)
    assert snapshot(rt) == before


def test_unknown_routes_and_methods_are_problem_documents(client: TestClient) -> None:
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.put("/api/v1/nodes")
    assert r.status_code == 405 and "allow" in r.headers
    assert json.loads(r.text)["code"] == "method_not_allowed"


def test_problem_responses_are_documented(client: TestClient, tmp_path: Path) -> None:
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status in ("404", "422"):
                content = op["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
