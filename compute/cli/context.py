"""What the commands share: settings, built once at start-up, and the runtime, built on use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compute.errors import ConfigError

if TYPE_CHECKING:
    # Loaded on first use: `--help` and commands that need no settings start without them.
    from compute.config import Settings
    from compute.runtime import Runtime
    from compute.store import Store


class CliContext:
    def __init__(self, config_path: Path | None, overrides: dict[str, Any], actor: str) -> None:
        self.config_path = config_path
        self.overrides = overrides
        self.actor = actor
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None
        self._store: Store | None = None

    def settings(self, extra: dict[str, Any] | None = None) -> Settings:
        if self._settings is None or extra:
            merged = dict(self.overrides)
            for k, v in (extra or {}).items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            from compute.config import load_settings

            self._settings = load_settings(self.config_path, overrides=merged)
        return self._settings

    def runtime(self, extra: dict[str, Any] | None = None) -> Runtime:
        if self._runtime is None:
            settings = self.settings(extra)
            usable_data_dir(settings.data_dir)
            from compute.runtime import Runtime

            self._runtime = Runtime.build(settings)
        return self._runtime

    def store(self) -> Store:
        """The store alone, for commands that only read it: no backends, no simulation."""
        if self._runtime is not None:
            return self._runtime.store
        if self._store is None:
            settings = self.settings()
            usable_data_dir(settings.data_dir)
            from compute.store import Store

            self._store = Store.open(settings.sqlalchemy_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def usable_data_dir(path: Path) -> None:
    """The data directory exists (made if missing) and can be written, or one line says why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"data directory {path} cannot be created: {exc.strerror or exc}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"data directory {path} is not writable")
