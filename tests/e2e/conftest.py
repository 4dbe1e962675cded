from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent / "computectl"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread, for a real browser."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@contextmanager
def chromium() -> Iterator[Any]:
    """A real headless Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        try:
            yield browser
        finally:
            browser.close()


def log_in(browser: Any, base: str, token: str) -> Any:
    """A new browser context at 1280 px, logged in at /login by pasting ``token``; its page."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(base + "/")
    assert page.url.endswith("/login")
    page.fill("#token", token)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: not url.endswith("/login"), timeout=15_000)
    return page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(data_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `computectl` the way an operator does."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        # The data directory, whatever contexts the machine's user has configured.
        outside = ("COMPUTECTL_TOKEN", "COMPUTECTL_CONTEXT")
        full_env = {
            **{k: v for k, v in os.environ.items() if k not in outside},
            "COMPUTECTL_CLIENT_CONFIG": str(data_dir.parent / "no-client-config.toml"),
            "COMPUTECTL_DATA_DIR": str(data_dir),
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **(env or {}),
        }
        return subprocess.run(
            [str(BIN), *args], capture_output=True, text=True, env=full_env, timeout=timeout
        )

    return run
