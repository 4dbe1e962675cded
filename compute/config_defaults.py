"""Where the settings come from: the environment's names, the data directory's default and
the store's file in it. compute.config builds the settings from these; the CLI's fast reads
(compute/client/sqlite_reads.py) find the same store from them without building the settings.
Standard library only: importing this costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "COMPUTECTL_"
ENV_CONFIG = "COMPUTECTL_CONFIG"
# Variables of the project's own tooling (test environments, caches), not settings.
TOOLING_PREFIXES = (
    "COMPUTECTL_TESTENV_",
    "COMPUTECTL_TEST_",
    "COMPUTECTL_K8S_",
    "COMPUTECTL_CACHE_DIR",
)
# Variables other parts read that are not settings: the remote CLI's credential and
# context, and a node's own credential and check time limit (never part of the settings,
# so `config show` cannot print them).
NOT_SETTINGS = frozenset(
    {
        "COMPUTECTL_TOKEN",
        "COMPUTECTL_CONTEXT",
        "COMPUTECTL_CLIENT_CONFIG",
        "COMPUTECTL_NODE_TOKEN",
        "COMPUTECTL_HEALTHCHECK_TIMEOUT",
    }
)
# Longest text a setting holds (paths, URLs, tokens, command words).
MAX_SETTING_TEXT = 4096
# The SQLite store's file in the data directory, when database_url is not set.
STORE_FILE = "computectl.db"


def default_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The data directory when no setting names one: $XDG_DATA_HOME/computectl."""
    return Path(environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser() / "computectl"


def sqlite_url(data_dir: Path) -> str:
    """The store's SQLAlchemy URL when database_url is not set."""
    return f"sqlite:///{data_dir / STORE_FILE}"


def setting_path(name: str) -> list[str] | None:
    """The setting an environment variable sets (COMPUTECTL_SECTION__KEY: section.key,
    lowercased); None for a variable that is not a setting's."""
    if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
        return None
    if name.startswith(TOOLING_PREFIXES) or name in NOT_SETTINGS:
        return None
    return [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
