"""`computectl demo` as a newcomer meets it: page up fast, a fault drained within two minutes,
visible everywhere (CLI, API, events, page in a real browser, /metrics), and a clean stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, free_port

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def get(url: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return str(r.read().decode())


def printed_logins(log: Path) -> dict[str, str]:
    """The demo's logins as it prints them: role (and tenant) -> token."""
    out = {}
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts and parts[-1].startswith("cct_"):
            out[" ".join(parts[:-1])] = parts[-1]
    return out


def wait_for(what: str, deadline: float, probe):  # type: ignore[no-untyped-def]
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(f"{what}: not within the deadline (last: {last!r})")


def test_demo_drains_the_first_fatal_fault_within_two_minutes(
    cli,
    data_dir: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    env = {**os.environ, "COMPUTECTL_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN), "demo", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the server", start + 60, lambda: "ok" in get(base + "/healthz"))
        # It prints a login for each role: an operator, a viewer, two tenants' people.
        logins = printed_logins(tmp_path / "demo.log")
        assert {"operator", "viewer"} <= logins.keys(), logins
        assert len([k for k in logins if k.startswith("tenant-admin of ")]) == 2, logins
        token = logins["operator"]
        viewer = logins["viewer"]
        # Nothing but /healthz without a credential.
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(base + "/api/v1/nodes")
        assert refused.value.code == 401
        wait_for("overview page", start + 60, lambda: "fleet overview" in get(base + "/", viewer))

        def owned_drain() -> dict | None:  # type: ignore[type-arg]
            nodes = json.loads(get(base + "/api/v1/nodes", token))["nodes"]
            drained = [
                n
                for n in nodes
                if n["drain_reason"].startswith("computectl:")
                and n["state"] in ("draining", "drained", "burn_in", "repair")
                and not n["drain_reason"].startswith("computectl: burn-in:")
            ]
            return drained[0] if drained else None

        node = wait_for("a computectl drain", start + 120, owned_drain)
        name, reason = node["name"], node["drain_reason"]

        # The CLI (another process, same data directory) sees it.
        listed = {n["name"]: n for n in json.loads(cli("nodes", "list", "-o", "json").stdout)}
        assert listed[name]["drain_reason"].startswith("computectl:")
        events = json.loads(cli("events", "--node", name, "-o", "json").stdout)
        assert any(e["kind"] == "drain" and e["reason"] == reason for e in events)

        # /metrics, as Prometheus will scrape it.
        metrics = get(base + "/metrics", viewer)
        assert f'node="{name}"' in metrics and "computectl_node_drain_info" in metrics
        if shutil.which("promtool"):
            check = subprocess.run(
                ["promtool", "check", "metrics"], input=metrics, text=True, capture_output=True
            )
            assert check.returncode == 0, check.stderr

        # The page, in a real browser.
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page()
            # Not logged in: the login page; a viewer's token logs in.
            page.goto(base + "/")
            assert page.url.endswith("/login")
            page.fill("#token", viewer)
            page.keyboard.press("Enter")
            page.wait_for_url(base + "/")
            page.wait_for_function(
                "document.querySelector('[data-testid=who]').textContent.includes('viewer')"
            )
            page.wait_for_selector(f'[data-node="{name}"]', timeout=15_000)
            cell = page.locator(f'.node[data-node="{name}"]')
            assert cell.get_attribute("data-state") != "in_service" or page.locator(
                "#drains"
            ).inner_text().count(name)
            drains = page.locator("#drains").inner_text()
            assert name in drains
            assert page.locator(".rack").count() == 4
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()[-3000:]
    # The data directory is consistent after the stop: state reads back, the world too.
    again = json.loads(cli("nodes", "list", "-o", "json").stdout)
    assert len(again) == 32
    from compute.simulation.worldfile import WorldFile

    world = WorldFile(data_dir / "simulation" / "state.db")
    try:
        assert world.generation()[0] > 0 and world.all_rows()
    finally:
        world.close()
