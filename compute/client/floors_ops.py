"""The client operations of learned burn-in floors: what the CLI calls, on the data directory
(``FloorsLocal``, mixed into LocalClient) and through the API (``FloorsRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from compute.client import shapes
from compute.client.ops_support import LocalHost, plain, server

if TYPE_CHECKING:
    pass

View = dict[str, Any]

FLOORS = {
    "computed_at": shapes.OptTime,
    "since": shapes.OptTime,
    "rule": (dict, type(None)),
    "note": shapes.STR,
    "floors": [
        {
            "model": shapes.STR,
            "stack": shapes.STR,
            "check": shapes.STR,
            "unit": shapes.STR,
            "samples": shapes.INT,
            "nodes": shapes.INT,
            "fixed_floor": shapes.NUM,
            "learned_floor": shapes.NUM,
            "learned": bool,
            "median": shapes.OPT_NUM,
            "mad": shapes.OPT_NUM,
            "reason": shapes.STR,
            "median_week_ago": shapes.OPT_NUM,
            "median_month_ago": shapes.OPT_NUM,
        }
    ],
}


class FloorsOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def floors_report(self, model: str | None) -> View:
        """How burn-in floors moved (GET /floors?model=M)."""
        ...


class FloorsLocal:
    """On the data directory."""

    def floors_report(self: LocalHost, model: str | None) -> View:
        floors = server("compute.services.floors_report")
        return plain(floors.report(self.store(), model))


class FloorsRemote:
    """Through the API."""

    def floors_report(self, model: str | None) -> View:
        query = [("model", model)] if model is not None else []
        found: View = self._get("/floors", FLOORS, query)  # type: ignore[attr-defined]
        return found
