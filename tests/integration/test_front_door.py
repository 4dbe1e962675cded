"""The front door on the simulated backend, through real requests: tokens (revoked and
expired ones refused, none kept in clear), malformed credentials, failed logins audited and
rate-limited, browser sessions with their CSRF token, a node bound to itself, tenants
isolated from each other, and every change's audit entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.api.auth import FailureLimiter
from compute.auth.testing import bearer, token_for
from compute.runtime import Runtime
from compute.services import audit, sessions
from compute.tenants.spec import parse_tenant
from compute.testing import make_runtime

pytestmark = pytest.mark.integration

GOOD = {"check": "xid", "version": "1", "status": "pass", "at": "2026-01-05T08:00:00+00:00"}


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path)
    runtime.sweep()
    for name in ("tenant-a", "tenant-b"):
        spec = parse_tenant({"name": name, "users": ["alice"]}, runtime.settings.effective_pools)
        runtime.tenants.apply(spec, actor="test")
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, limiter=FailureLimiter(limit=1000))) as c:
        yield c


def entries(rt: Runtime, action: str) -> list[audit.AuditRecord]:
    return [e for e in audit.audit_log.entries(rt.store, limit=1000) if e.action == action]


def test_revoked_and_expired_tokens_get_401(client: TestClient, rt: Runtime) -> None:
    live = token_for(rt.store, "viewer")
    assert client.get("/api/v1/nodes", headers=bearer(live)).status_code == 200
    op = token_for(rt.store, "operator")
    listed = client.get("/api/v1/tokens", headers=bearer(op)).json()["tokens"]
    live_id = next(t["id"] for t in listed if live.split("_")[1] == t["prefix"])
    revoked = client.delete(f"/api/v1/tokens/{live_id}", headers=bearer(op))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    r = client.get("/api/v1/nodes", headers=bearer(live))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["code"] == "unauthorized"
    past = datetime.now(UTC) - timedelta(days=2)
    expired = token_for(rt.store, "operator", lifetime=timedelta(days=1), now=past)
    assert client.get("/api/v1/nodes", headers=bearer(expired)).status_code == 401
    failed = entries(rt, "auth.login")
    assert any("revoked" in e.result for e in failed)
    assert any("expired" in e.result for e in failed)


def test_the_store_holds_no_raw_token(client: TestClient, rt: Runtime) -> None:
    made = [token_for(rt.store, role) for role in ("operator", "viewer")]
    made.append(
        client.post(
            "/api/v1/tokens",
            json={"role": "tenant-member", "tenant": "tenant-a", "name": "ci"},
            headers=bearer(made[0]),
        ).json()["token"]
    )
    for t in made:
        assert client.get("/api/v1/whoami", headers=bearer(t)).status_code == 200
    login = client.post("/login", data={"token": made[0]}, follow_redirects=False)
    cookie = login.cookies[sessions.COOKIE]
    data = b"".join(p.read_bytes() for p in rt.settings.data_dir.rglob("*") if p.is_file())
    assert data, "nothing stored?"
    for secret in [*made, cookie, login.cookies[sessions.CSRF_COOKIE]]:
        assert secret.encode() not in data
        # A token's secret part alone is not there either (the prefix is, by design).
        assert (
            secret.removeprefix(secret[:13] if secret.startswith("cct_") else "").encode()
            not in data
        )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=120),
        st.builds(lambda s: "Bearer " + s, st.text(min_size=0, max_size=200)),
        st.builds(lambda s: "Bearer cct_" + s, st.text(alphabet="abcz09_-", max_size=60)),
    )
)
def test_malformed_authorization_is_always_401_never_500(client: TestClient, header: str) -> None:
    try:
        value = header.encode("latin-1")
    except UnicodeEncodeError:
        value = header.encode("utf-8")
    r = client.get("/api/v1/nodes", headers={"authorization": value})
    assert r.status_code == 401, (header, r.text)
    w = client.post(
        "/api/v1/nodes/gpu-001/drain", json={"reason": "x"}, headers={"authorization": value}
    )
    assert w.status_code == 401


def test_failed_logins_are_audited_and_rate_limited(rt: Runtime) -> None:
    good = token_for(rt.store, "operator")
    with TestClient(create_app(rt, limiter=FailureLimiter(limit=3, window=60))) as c:
        for _ in range(3):
            bad = c.get("/api/v1/nodes", headers=bearer("cct_aaaaaaaa_" + "x" * 43))
            assert bad.status_code == 401
        limited = c.get("/api/v1/nodes", headers=bearer("cct_aaaaaaaa_" + "y" * 43))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # Failures from the source are held for a while (unrecorded), anonymous writes too;
        # a valid credential from the same address still works: many people and nodes can
        # share one address behind a proxy, and one of them must not lock out the rest.
        assert c.post("/login", data={"token": "nope"}).status_code == 429
        assert c.post("/api/v1/sweep").status_code == 429
        assert c.get("/api/v1/nodes", headers=bearer(good)).status_code == 200
        assert c.post("/login", data={"token": good}, follow_redirects=False).status_code == 303
        assert c.get("/healthz").status_code == 200
    failed = [e for e in entries(rt, "auth.login") if e.result != "ok"]
    assert len(failed) == 3
    assert all(e.actor == "anonymous" and e.source == "testclient" for e in failed)
    assert failed[0].result.startswith("refused: ") and "for a while" in failed[0].result


def test_browser_session_csrf_and_logout(client: TestClient, rt: Runtime) -> None:
    op = token_for(rt.store, "operator", name="alice-laptop")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    bad = client.post("/login", data={"token": "nope"})
    assert bad.status_code == 401 and "not valid" in bad.text
    r = client.post("/login", data={"token": op}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    set_cookie = r.headers.get_list("set-cookie")
    session = next(c for c in set_cookie if c.startswith(sessions.COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=strict" in session
    assert "fleet overview" in client.get("/").text
    assert client.get("/api/v1/whoami").json()["name"] == "alice-laptop"
    # A change from the browser needs the CSRF token as well as the cookie.
    drain = {"reason": "fan"}
    assert client.post("/api/v1/nodes/gpu-004/drain", json=drain).status_code == 403
    wrong = {"x-csrf-token": "x"}
    assert client.post("/api/v1/nodes/gpu-004/drain", json=drain, headers=wrong).status_code == 403
    csrf = {"x-csrf-token": client.cookies[sessions.CSRF_COOKIE]}
    ok = client.post("/api/v1/nodes/gpu-004/drain", json=drain, headers=csrf)
    assert ok.status_code == 200
    kept = client.cookies[sessions.COOKIE]
    assert client.post("/logout", follow_redirects=False).status_code == 303
    # The old cookie is worth nothing once logged out.
    client.cookies.set(sessions.COOKIE, kept)
    assert client.get("/api/v1/whoami").status_code == 401
    actions = [e.action for e in audit.audit_log.entries(rt.store, limit=50)]
    assert "auth.login" in actions and "auth.logout" in actions


def test_a_node_token_logs_no_one_in(client: TestClient, rt: Runtime) -> None:
    node = token_for(rt.store, "node", node="gpu-001")
    assert client.post("/login", data={"token": node}).status_code == 403


def test_a_node_reports_for_itself_only(client: TestClient, rt: Runtime) -> None:
    x = bearer(token_for(rt.store, "node", node="gpu-001"))
    before = rt.store.count_results()
    report = [{**GOOD, "status": "fail", "fatal": True, "evidence": "XID 79"}]
    r = client.post("/api/v1/nodes/gpu-002/health", json=report, headers=x)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert rt.store.count_results() == before
    assert rt.store.node("gpu-002") is not None
    assert rt.store.node("gpu-002").attention_at is None  # type: ignore[union-attr]
    refused = [e for e in audit.audit_log.entries(rt.store) if e.result.startswith("refused: 403")]
    assert refused and refused[0].target == "/api/v1/nodes/gpu-002/health"
    assert client.post("/api/v1/nodes/gpu-001/health", json=[GOOD], headers=x).status_code == 202
    # It reads its own node (the GPUs it should have), no other, and nothing fleet-wide.
    assert client.get("/api/v1/nodes/gpu-001", headers=x).status_code == 200
    assert client.get("/api/v1/nodes/gpu-002", headers=x).status_code == 403
    assert client.get("/api/v1/nodes", headers=x).status_code == 403


def test_tenant_a_cannot_see_or_change_anything_of_b(client: TestClient, rt: Runtime) -> None:
    op = bearer(token_for(rt.store, "operator"))
    admin_a = bearer(token_for(rt.store, "tenant-admin", tenant="tenant-a"))
    member_a = bearer(token_for(rt.store, "tenant-member", tenant="tenant-a"))
    b_token = client.post(
        "/api/v1/tokens", json={"role": "tenant-member", "tenant": "tenant-b"}, headers=op
    ).json()
    # B's tenant, its changes and its tokens are out of A's reach.
    for who in (admin_a, member_a):
        assert client.get("/api/v1/tenants/tenant-b", headers=who).status_code == 403
        assert client.get("/api/v1/tenants", headers=who).status_code == 403
        assert client.post("/api/v1/tenants/tenant-b/suspend", headers=who).status_code == 403
        assert client.delete("/api/v1/tenants/tenant-b", headers=who).status_code == 403
    assert client.get("/api/v1/tenants/tenant-a", headers=member_a).status_code == 200
    issued = client.post(
        "/api/v1/tokens", json={"role": "tenant-member", "tenant": "tenant-b"}, headers=admin_a
    )
    assert issued.status_code == 403
    for role in ("operator", "viewer", "node"):
        body = {"role": role, **({"node": "gpu-001"} if role == "node" else {})}
        assert client.post("/api/v1/tokens", json=body, headers=admin_a).status_code == 403
    mine = client.post(
        "/api/v1/tokens", json={"role": "tenant-member", "tenant": "tenant-a"}, headers=admin_a
    )
    assert mine.status_code == 201 and mine.json()["token"].startswith("cct_")
    listed = client.get("/api/v1/tokens", headers=admin_a).json()["tokens"]
    assert listed and {t["tenant"] for t in listed} == {"tenant-a"}
    gone = client.delete(f"/api/v1/tokens/{b_token['id']}", headers=admin_a)
    assert gone.status_code == 404
    assert client.get("/api/v1/whoami", headers=bearer(b_token["token"])).status_code == 200
    # The audit trail: A's own only; B's refused outright.
    client.post("/api/v1/tenants/tenant-b/suspend", headers=op)
    assert client.get("/api/v1/audit?tenant=tenant-b", headers=admin_a).status_code == 403
    seen = client.get("/api/v1/audit", headers=admin_a).json()["entries"]
    assert seen and {e["tenant"] for e in seen} == {"tenant-a"}
    assert client.get("/api/v1/audit", headers=member_a).status_code == 403
    everything = client.get("/api/v1/audit?tenant=tenant-b", headers=op).json()["entries"]
    assert any(e["action"] == "tenant.suspend" for e in everything)


def test_every_change_is_audited_with_who_where_and_result(client: TestClient, rt: Runtime) -> None:
    op = token_for(rt.store, "operator", name="alice-laptop")
    h = bearer(op)
    assert (
        client.post("/api/v1/nodes/gpu-004/drain", json={"reason": "fan"}, headers=h).status_code
        == 200
    )
    refused = client.post("/api/v1/nodes/gpu-005/resume", json={}, headers=h)
    assert refused.status_code == 409
    invalid = client.post("/api/v1/nodes/gpu-004/drain", json={}, headers=h)
    assert invalid.status_code == 422
    anonymous = client.post("/api/v1/nodes/gpu-006/drain", json={"reason": "x"})
    assert anonymous.status_code == 401
    log = client.get("/api/v1/audit?limit=20", headers=h).json()["entries"]
    drained = next(e for e in log if e["action"] == "node.drain")
    assert drained["actor"].endswith("(alice-laptop)") and drained["actor"].startswith("token:")
    assert drained["source"] == "testclient" and drained["result"] == "ok"
    assert drained["target"] == "gpu-004"
    results = {e["result"].split(":")[0] + ":" + e["target"] for e in log if e["result"] != "ok"}
    assert "refused:/api/v1/nodes/gpu-005/resume" in results
    assert "refused:/api/v1/nodes/gpu-004/drain" in results
    anon = next(e for e in log if e["target"] == "/api/v1/nodes/gpu-006/drain")
    assert anon["actor"] == "anonymous" and anon["result"].startswith("refused: 401")
    mine = client.get("/api/v1/audit", params={"actor": drained["actor"].split(" ")[0]}, headers=h)
    assert {e["actor"] for e in mine.json()["entries"]} == {drained["actor"]}


def test_login_and_logout_are_refused_from_another_site(client: TestClient, rt: Runtime) -> None:
    good = token_for(rt.store, "operator")
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        r = client.post("/login", data={"token": good}, headers=headers, follow_redirects=False)
        assert r.status_code == 403 and not client.cookies.get(sessions.COOKIE)
    same = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}
    r = client.post("/login", data={"token": good}, headers=same, follow_redirects=False)
    assert r.status_code == 303 and client.cookies.get(sessions.COOKIE)
    r = client.post("/logout", headers={"sec-fetch-site": "cross-site"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/api/v1/whoami").status_code == 200  # still logged in


def test_deleting_a_tenant_revokes_its_peoples_tokens(client: TestClient, rt: Runtime) -> None:
    op = bearer(token_for(rt.store, "operator"))
    spec = {"name": "gone-ai", "users": ["eve"], "quotas": [{"pool": "training", "gpus": 8}]}
    assert client.put("/api/v1/tenants/gone-ai", json=spec, headers=op).status_code == 200
    admin = bearer(token_for(rt.store, "tenant-admin", tenant="gone-ai"))
    assert client.get("/api/v1/tenants/gone-ai", headers=admin).status_code == 200
    assert client.delete("/api/v1/tenants/gone-ai", headers=op).status_code == 200
    # A tenant made again under the same name does not let the old people in.
    assert client.put("/api/v1/tenants/gone-ai", json=spec, headers=op).status_code == 200
    assert client.get("/api/v1/tenants/gone-ai", headers=admin).status_code == 401


def test_a_kubeconfig_lives_at_most_a_day(client: TestClient, rt: Runtime) -> None:
    op = bearer(token_for(rt.store, "operator"))
    r = client.post("/api/v1/tenants/x/kubeconfig", json={"hours": 8784}, headers=op)
    assert r.status_code == 422


def test_login_cookies_are_secure_where_tls_ends_at_a_proxy(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, {"server": {"secure_cookies": True}})
    try:
        good = token_for(runtime.store, "operator")
        with TestClient(create_app(runtime)) as c:  # http, as behind a TLS proxy
            r = c.post("/login", data={"token": good}, follow_redirects=False)
            cookies = r.headers.get_list("set-cookie")
            assert r.status_code == 303 and len(cookies) == 2
            assert all("secure" in k.lower() for k in cookies)
    finally:
        runtime.close()
