"""The client operations of lemons: what `nodes clear-lemon` calls, on the data directory
(``LemonLocal``, mixed into LocalClient) and through the API (``LemonRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from compute.client import shapes
from compute.client.ops_support import LocalHost, plain, server

View = dict[str, Any]

CLEARED = {
    "node": shapes.STR,
    "cleared_at": shapes.Time,
    "reason": shapes.STR,
    "actor": shapes.STR,
    "mark": {"at": shapes.Time, "reason": shapes.STR},
}


class LemonOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def clear_lemon(self, name: str, reason: str) -> View:
        """cleared_view (POST /nodes/{name}/lemon/clear)."""
        ...


class LemonLocal:
    """On the data directory."""

    def clear_lemon(self: LocalHost, name: str, reason: str) -> View:
        lemon_clear = server("compute.services.lemon_clear")
        rt = self.runtime()
        done = lemon_clear.clear(rt.store, name, reason, self.actor, rt.clock.now())
        return plain(lemon_clear.cleared_view(done))


class LemonRemote:
    """Through the API."""

    if TYPE_CHECKING:

        def _post(self, path: str, shape: Any, body: Any = None) -> Any: ...

    def clear_lemon(self, name: str, reason: str) -> View:
        path = f"/nodes/{quote(name, safe='')}/lemon/clear"
        done: View = self._post(path, CLEARED, {"reason": reason})
        return done
