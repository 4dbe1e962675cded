"""What every feature's client operations (compute/client/*_ops.py) share.

Each *_ops module holds a feature's answer shapes, its ``...Remote`` mixin (RemoteClient)
and its ``...Local`` mixin (LocalClient) side by side, so the two answer the same view. The
remote CLI imports these modules and must start without the server's libraries (the import
contract "the remote CLI starts without the server's libraries" in pyproject.toml): a local
mixin reaches the server-side modules through ``server`` (by name, as it runs) and never
through an import statement, which the contract would count even inside a function.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from compute.config import Settings
    from compute.runtime import Runtime
    from compute.store import Store


def server(module: str) -> Any:
    """A server-side module (compute.services..., compute.views), loaded by name when a
    command on the data directory runs."""
    return importlib.import_module(module)


def plain(view: dict[str, Any]) -> dict[str, Any]:
    """A view as the API's JSON encoder gives it back, so a command prints the same on the
    data directory as through the API."""
    found: dict[str, Any] = server("compute.client.local").plain(view)
    return found


def plain_all(views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [plain(v) for v in views]


class LocalHost(Protocol):
    """What a local mixin may use of LocalClient."""

    actor: str

    def runtime(self, extra: dict[str, Any] | None = None) -> Runtime: ...

    def store(self) -> Store: ...

    def settings(self, extra: dict[str, Any] | None = None) -> Settings: ...


class RemoteHost(Protocol):
    """What a remote mixin may use of RemoteClient."""

    def call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str | int | bool]] = (),
        body: Any = None,
    ) -> Any: ...
