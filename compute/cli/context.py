"""What the commands share: where they go (the data directory, or a server through its API)
and, on the data directory, settings built once at start-up and the runtime built on use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from compute.client.errors import NotThroughApi
from compute.client.local import LocalClient, usable_data_dir

if TYPE_CHECKING:
    from compute.client.contexts import Target
    from compute.client.protocol import Client
    from compute.config import Settings
    from compute.runtime import Runtime
    from compute.store import Store

__all__ = ["CliContext", "Remote", "usable_data_dir"]


class Remote:
    """What the root options say about a server: --server, --token / COMPUTECTL_TOKEN,
    --context / COMPUTECTL_CONTEXT. Resolved (the client configuration read) on first use."""

    def __init__(self, server: str | None, token: str | None, context: str | None) -> None:
        self.server = server
        self.token = token
        self.context = context

    @property
    def explicit(self) -> bool:
        """A server named on the command line or in the environment (not by the file)."""
        return self.server is not None or self.context not in (None, "local")

    def resolve(self) -> Target | None:
        from compute.client import contexts

        # --server alone takes nothing from the file (so a broken one does not stop it).
        config = (
            contexts.ClientConfig()
            if self.server is not None and self.context is None
            else contexts.load(contexts.config_path(os.environ))
        )
        return contexts.resolve(
            self.server, self.token, self.context, self.context is not None, config
        )


class CliContext:
    def __init__(
        self,
        config_path: Path | None,
        overrides: dict[str, Any],
        actor: str,
        remote: Remote | None = None,
    ) -> None:
        self.local = LocalClient(config_path, overrides, actor)
        # None: the data directory (--data-dir given, or a command that works only there).
        self.remote = remote
        self._target: Target | None = None
        self._client: Client | None = None

    @property
    def actor(self) -> str:
        return self.local.actor

    def target(self) -> Target | None:
        """The server commands go to, or None for the data directory."""
        if self.remote is None:
            return None
        if self._target is None:
            self._target = self.remote.resolve()
            if self._target is None:
                self.remote = None
        return self._target

    def client(self) -> Client:
        if self._client is None:
            target = self.target()
            if target is None:
                self._client = self.local
            else:
                from compute.client.remote import RemoteClient

                self._client = RemoteClient(target)
        return self._client

    # -- what only the data directory has -------------------------------------------------

    def settings(self, extra: dict[str, Any] | None = None) -> Settings:
        self._here_only()
        return self.local.settings(extra)

    def runtime(self, extra: dict[str, Any] | None = None) -> Runtime:
        self._here_only()
        return self.local.runtime(extra)

    def store(self) -> Store:
        self._here_only()
        return self.local.store()

    def _here_only(self) -> None:
        target = self.target()
        if target is None:
            return
        current = click.get_current_context(silent=True)
        what = current.command_path if current is not None else "this command"
        raise NotThroughApi(
            f"`{what}` works on the data directory only, not through {target.server}; "
            "run it there, or with --context local"
        )

    def close(self) -> None:
        if self._client is not None and self._client is not self.local:
            self._client.close()
        self.local.close()
