"""A real OpenID provider for the single sign-on tests: dex, built and started by
testenv/dex, with its password database of the users below and one static client.

Not a conftest.py of its own (pytest would not find it under this name): test modules
import the fixture (``from tests.integration.conftest_dex import dex``).
Its own state dir and ports: COMPUTECTL_TEST_DEX_DIR, COMPUTECTL_TEST_DEX_PORT (35556), and
COMPUTECTL_TEST_DEX_CALLBACK_PORT (35599: where the browser test serves computectl).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEX_STATE_DIR = Path(
    os.environ.get(
        "COMPUTECTL_TEST_DEX_DIR",
        Path(os.environ.get("COMPUTECTL_TESTENV_DIR", Path.home() / ".cache/computectl/testenv"))
        / "dex-pytest",
    )
)
DEX_PORT = int(os.environ.get("COMPUTECTL_TEST_DEX_PORT", "35556"))
CLIENT_ID = "computectl-test"
# The tests that stop at dex's redirect and read the code from it need nothing here; the
# browser test serves computectl here. "localhost", not dex's 127.0.0.1: another site, as
# a provider is in production (what a browser does with SameSite cookies depends on it).
CALLBACK_PORT = int(os.environ.get("COMPUTECTL_TEST_DEX_CALLBACK_PORT", "35599"))
REDIRECT_URI = f"http://localhost:{CALLBACK_PORT}/oidc/callback"


@dataclass(frozen=True)
class DexUser:
    email: str
    password: str
    groups: tuple[str, ...]

    @property
    def arg(self) -> str:
        groups = ",".join(self.groups)
        return f"{self.email}:{self.password}" + (f":{groups}" if groups else "")


USERS = {
    "ops": DexUser("ops@example.com", "ops-pass-1", ("computectl-operators",)),
    "noc": DexUser("noc@example.com", "noc-pass-1", ("noc", "computectl-viewers")),
    "alice": DexUser("alice@example.com", "alice-pass-1", ("team-a", "team-a-admins")),
    "bob": DexUser("bob@example.com", "bob-pass-1", ("team-b",)),
    "mallory": DexUser("mallory@example.com", "mallory-pass-1", ("interns",)),
    "nogroups": DexUser("nogroups@example.com", "nogroups-pass-1", ()),
}


@dataclass(frozen=True)
class Dex:
    state_dir: Path
    port: int
    client_id: str
    redirect_uri: str

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/dex"

    @property
    def client_secret_file(self) -> Path:
        return self.state_dir / "client-secret"


def _testenv(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "testenv" / "dex"), *args, "--dir", str(DEX_STATE_DIR)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def dex() -> Iterator[Dex]:
    """dex on 127.0.0.1, started for the session (the first run builds it: minutes)."""
    was_up = _testenv("status", timeout=30).returncode == 0
    args = ["up", "--port", str(DEX_PORT), "--client-id", CLIENT_ID, "--redirect-uri", REDIRECT_URI]
    for user in USERS.values():
        args += ["--user", user.arg]
    up = _testenv(*args, timeout=3600)
    if up.returncode:
        pytest.fail(f"testenv/dex up failed:\n{up.stderr}{up.stdout}")
    yield Dex(DEX_STATE_DIR, DEX_PORT, CLIENT_ID, REDIRECT_URI)
    if not was_up:
        _testenv("down", timeout=60)
