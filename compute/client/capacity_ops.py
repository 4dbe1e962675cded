"""The client operations of capacity planning: what the CLI calls, on the data directory
(``CapacityLocal``, mixed into LocalClient) and through the API (``CapacityRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import Protocol


class CapacityOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""


class CapacityLocal:
    """On the data directory."""


class CapacityRemote:
    """Through the API."""
