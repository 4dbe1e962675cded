from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "computectl"


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
