"""The acceptance report in real Chromium: served by the API to a viewer, it shows the
tranche's bad nodes (RMA list) and its bad link; a report whose node name is hostile markup
shows that name as text and runs none of it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.api import create_app
from compute.auth.testing import token_for
from compute.runtime import Runtime
from compute.services import acceptance
from compute.services.acceptance_html import render
from compute.testing import make_runtime
from tests.e2e.conftest import chromium, free_port, serving

pytestmark = pytest.mark.e2e

BAD, LINK = "gpu-004", ("gpu-006", "gpu-007")
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, str]]:
    rt = make_runtime(
        tmp_path,
        target_utilisation=0.0,
        racks=1,
        nodes_per_rack=8,
        config={"remediation": {"periodic_burn_in_days": 0, "new_nodes": "in_service"}},
    )
    rt.sweep()
    assert rt.datacenter is not None
    rt.datacenter.inject(BAD, "xid79", gpu=2)
    rt.datacenter.inject_link(*LINK)
    acceptance.create(rt.store, rt.clock, "hall-b", "operator:test", ["gpu-[001-008]"], None, 0.8)
    acceptance.run(rt.store, rt.clock, "hall-b")
    for _ in range(10):
        rt.sweep()
    port = free_port()
    try:
        with serving(create_app(rt), port):
            yield rt, f"http://127.0.0.1:{port}"
    finally:
        rt.close()


def test_the_report_in_chromium(world: tuple[Runtime, str], tmp_path: Path) -> None:
    rt, base = world
    viewer = token_for(rt.store, "viewer", name="vera")
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 1280, "height": 800},
            extra_http_headers={"Authorization": f"Bearer {viewer}"},
        )
        page = context.new_page()
        answer = page.goto(f"{base}/api/v1/acceptance/hall-b/report.html")
        assert answer is not None and answer.status == 200
        rma = page.inner_text("table.rma")
        assert BAD in rma
        links = page.inner_text("table.suspect-links")
        assert " - ".join(LINK) in links
        assert "7 of 8 accepted" in page.inner_text("#verdict")
        rows = page.locator("table.nodes tbody tr")
        assert rows.count() == 8
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

        # A node name that is markup: shown as the text it is, nothing of it runs.
        report = copy.deepcopy(acceptance.report(rt.store, "hall-b"))
        report["rma"][0]["node"] = HOSTILE
        report["nodes"][3]["node"] = HOSTILE
        hostile = tmp_path / "hostile.html"
        hostile.write_text(render(report), encoding="utf-8")
        page = context.new_page()
        page.goto(hostile.as_uri())
        assert HOSTILE in page.inner_text("table.rma")
        assert HOSTILE in page.inner_text("table.nodes")
        assert page.locator("table img, table script").count() == 0
        assert page.evaluate("window.pwned") is None
        context.close()
