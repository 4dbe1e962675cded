"""The portal in real Chromium: tenant A's admin logs in with a token, sees A's quotas and
work, and files a quota request with the keyboard; an operator approves it in /portal/ops
and A's quota changes; tenant B's admin sees nothing of A, and guessing A's URLs gets 403.
Every page fits 1280 px and shows who is logged in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.api import create_app
from compute.auth.testing import token_for
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant, spec_from_json
from compute.testing import make_runtime
from tests.e2e.conftest import chromium, free_port, log_in, serving

pytestmark = pytest.mark.e2e

A, B = "tenant-a", "tenant-b"
# An operator's free text that names another tenant: A's people must not read B's name.
DRAIN_REASON = f"{B} job wedged the fabric"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, str, str]]:
    """A simulated fleet with tenants A and B, a job of each, a drain of A's node; served."""
    rt = make_runtime(tmp_path, target_utilisation=0.0)
    rt.sweep()
    rt.sweep()
    for name in (A, B):
        spec = parse_tenant(
            {"name": name, "users": ["alice"], "quotas": [{"pool": "training", "gpus": 8}]},
            rt.settings.effective_pools,
        )
        rt.tenants.apply(spec, actor="test")
    dc = rt.datacenter
    assert dc is not None
    with dc.cluster_access() as c:
        for name in (A, B):
            assert c.submit(name, "training", 8, 1, hours=5).start is not None
    rt.sweep()
    dc.advance(120)  # two sweeps with time between: energy for A's job to show
    rt.sweep()
    a_node = next(a.node for a in rt.store.allocations() if a.tenant == A)
    rt.nodes.drain(a_node, DRAIN_REASON, actor="operator:test")
    port = free_port()
    try:
        with serving(create_app(rt), port):
            yield rt, f"http://127.0.0.1:{port}", a_node
    finally:
        rt.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def fits(page: Any) -> None:
    """No sideways scrolling at 1280 px, and who is logged in is on the page."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, (page.url, width)
    assert "Logged in as" in page.inner_text("[data-testid=who]")
    assert page.locator("button", has_text="Log out").count() == 1


def test_tenant_asks_operator_approves_other_tenant_sees_nothing(
    world: tuple[Runtime, str, str], browser: Any, tmp_path: Path
) -> None:
    rt, base, a_node = world
    admin_a = token_for(rt.store, "tenant-admin", tenant=A, name="alice")
    admin_b = token_for(rt.store, "tenant-admin", tenant=B, name="bob")
    operator = token_for(rt.store, "operator", name="olga")

    # -- A's admin: lands on A's overview ------------------------------------------------------
    page = log_in(browser, base, admin_a)
    page.wait_for_url(f"{base}/portal/t/{A}")
    assert "tenant-admin of tenant-a" in page.inner_text("[data-testid=who]")
    quotas = page.inner_text("[data-testid=quotas]")
    assert "training" in quotas and "8" in quotas
    assert a_node in page.inner_text("[data-testid=work]")
    incidents = page.inner_text("[data-testid=incidents]")
    assert a_node in incidents and "[another tenant] job wedged the fabric" in incidents
    energy = page.inner_text("[data-testid=energy]")
    assert "training" in energy and float(page.inner_text("[data-testid=energy-total]")) > 0
    assert re.search(rf"\b{B}\b", page.content()) is None
    fits(page)
    page.screenshot(path=str(tmp_path / "tenant-overview.png"), full_page=True)
    # The keyboard reaches the page: the first Tab lands on the skip link, shown when focused.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # -- A's admin files a quota request with the keyboard ------------------------------------
    page.click("text=Quota requests")
    page.wait_for_url(f"{base}/portal/t/{A}/requests")
    fits(page)
    page.select_option("#pool", "training")
    page.fill("#gpus", "16")
    page.fill("#reason", "a bigger training run <b>now</b>")
    page.press("#reason", "Enter")
    flash = page.wait_for_selector("[data-testid=flash]", timeout=15_000)
    assert flash is not None and "filed: 16 GPUs in training" in flash.inner_text()
    row = page.locator("[data-testid=requests] tr[data-request]")
    assert row.count() == 1 and "pending" in row.inner_text()
    assert "<b>now</b>" in row.inner_text()  # shown as text, not markup
    # A refusal is said beside the form (a second request for the pool while one waits).
    page.fill("#gpus", "24")
    page.fill("#reason", "even more")
    page.press("#reason", "Enter")
    page.wait_for_function(
        "document.querySelector('[data-testid=form-error]').textContent.includes('pending')"
    )
    page.screenshot(path=str(tmp_path / "tenant-requests.png"), full_page=True)

    # -- an operator approves it in /portal/ops -------------------------------------------------
    ops = log_in(browser, base, operator)
    ops.goto(base + "/portal/ops")
    fits(ops)
    pending = ops.locator("[data-testid=requests]").first
    assert A in pending.inner_text() and "a bigger training run" in pending.inner_text()
    req_id = pending.locator("tr[data-request]").first.get_attribute("data-request")
    ops.fill(f"#note-{req_id}", "approved for Q3")
    ops.click(f"[data-testid=approve-{req_id}]")
    done = ops.wait_for_selector("[data-testid=flash]", timeout=30_000)
    assert done is not None and "approved" in done.inner_text(), done and done.inner_text()
    record = rt.store.tenant(A)
    assert record is not None
    assert [q.gpus for q in spec_from_json(record.spec).quotas] == [16]
    for path in (
        "/portal/ops/tenants",
        "/portal/ops/drains",
        "/portal/ops/capacity",
        "/portal/ops/audit",
    ):
        assert ops.goto(base + path).status == 200
        fits(ops)
    assert "quota_request.approve" in ops.inner_text("[data-testid=audit]")
    ops.screenshot(path=str(tmp_path / "ops-audit.png"), full_page=True)

    # A's admin sees the decision.
    page.goto(f"{base}/portal/t/{A}/requests")
    assert "approved" in page.inner_text("[data-testid=requests]")
    page.goto(f"{base}/portal/t/{A}")
    assert "16" in page.inner_text("[data-testid=quotas]")

    # -- B's admin: its own pages, nothing of A -----------------------------------------------
    other = log_in(browser, base, admin_b)
    other.wait_for_url(f"{base}/portal/t/{B}")
    for path in ("", "/requests", "/tokens"):
        other.goto(f"{base}/portal/t/{B}{path}")
        fits(other)
        # (as a word: "tenant-admin" begins with "tenant-a")
        assert re.search(rf"\b{A}\b", other.content()) is None, path
        assert a_node not in other.inner_text("main"), (path, other.inner_text("main"))
    for guessed in (
        f"/portal/t/{A}",
        f"/portal/t/{A}/requests",
        f"/portal/t/{A}/tokens",
        "/portal/ops",
        "/portal/ops/audit",
        f"/api/v1/tenants/{A}/quota-requests",
        "/api/v1/quota-requests",
    ):
        assert other.goto(base + guessed).status in (403, 404), guessed
    # A form posted at A's URL from B's session (with B's CSRF token) is refused too.
    status = other.evaluate(
        """async (url) => {
             const csrf = document.cookie.split('; ').find(c => c.startsWith('computectl_csrf=')).slice(16);
             const r = await fetch(url, {method: 'POST', headers: {'X-CSRF-Token': csrf,
               'Content-Type': 'application/x-www-form-urlencoded'},
               body: 'pool=training&gpus=64&reason=mine'});
             return r.status; }""",
        f"{base}/portal/t/{A}/requests",
    )
    assert status == 403

    # -- logging out ends the session -----------------------------------------------------------
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/portal/t/{A}")
    assert page.url.endswith("/login")
