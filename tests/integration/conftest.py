from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (Debian's), started by testenv/postgres and stopped afterwards."""
    script = ROOT / "testenv" / "postgres"
    was_up = subprocess.run([str(script), "status"], capture_output=True).returncode == 0
    up = subprocess.run([str(script), "up"], capture_output=True, text=True)
    if up.returncode:
        pytest.fail(f"testenv/postgres up failed: {up.stderr or up.stdout}")
    yield up.stdout.strip().splitlines()[-1]
    if not was_up:
        subprocess.run([str(script), "down"], capture_output=True)


@pytest.fixture
def clean_postgres(postgres_url: str) -> str:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_url
