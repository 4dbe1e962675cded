"""The client operations of capacity planning: what the CLI calls, on the data directory
(``CapacityLocal``, mixed into LocalClient) and through the API (``CapacityRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from compute.client import shapes
from compute.client.ops_support import LocalHost, plain, server

if TYPE_CHECKING:
    pass

View = dict[str, Any]

B = bool
FORECAST = {
    "at": shapes.OPT_STR,
    "trend_days": shapes.NUM,
    "free": [
        {
            "pool": shapes.STR,
            "gpu_model": shapes.STR,
            "installed": shapes.INT,
            "usable": shapes.INT,
            "allocated": shapes.INT,
            "free": shapes.INT,
            "trend_gpus_per_day": shapes.NUM,
            "trend_samples": shapes.INT,
            "days_until_full": shapes.OPT_NUM,
        }
    ],
    "racks": [
        {
            "rack": shapes.STR,
            "room": shapes.STR,
            "limit_watts": shapes.NUM,
            "watts": shapes.NUM,
            "headroom_watts": shapes.NUM,
            "forecast_watts": shapes.NUM,
            "over_budget": B,
        }
    ],
    "rooms": [
        {
            "room": shapes.STR,
            "site": shapes.STR,
            "limit_watts": shapes.NUM,
            "watts": shapes.NUM,
            "headroom_watts": shapes.NUM,
        }
    ],
    "n_minus_one": [
        {
            "pool": shapes.STR,
            "largest_rack": shapes.STR,
            "rack_gpus": shapes.INT,
            "free_after": shapes.INT,
        }
    ],
    "additions": [
        {
            "nodes": shapes.INT,
            "gpu_model": shapes.STR,
            "room": shapes.STR,
            "watts_per_node": shapes.NUM,
            "watts_source": shapes.STR,
            "added_watts": shapes.NUM,
            "room_watts_after": shapes.NUM,
            "room_limit_watts": shapes.NUM,
            "headroom_after_watts": shapes.NUM,
            "fits": B,
        }
    ],
}


class CapacityOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def capacity_forecast(self, add: Sequence[str]) -> View:
        """The capacity forecast view (GET /capacity/forecast?add=K:MODEL:ROOM)."""
        ...


class CapacityLocal:
    """On the data directory."""

    def capacity_forecast(self: LocalHost, add: Sequence[str]) -> View:
        planning = server("compute.services.capacity_plan")
        adds = [planning.parse_addition(a) for a in add]
        return plain(planning.plan(self.store(), self.settings().topology, adds))


class CapacityRemote:
    """Through the API."""

    def capacity_forecast(self, add: Sequence[str]) -> View:
        query = [("add", a) for a in add]
        found: View = self._get("/capacity/forecast", FORECAST, query)  # type: ignore[attr-defined]
        return found
