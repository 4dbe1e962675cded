"""The client operations of energy and GPU-hours for billing: what the CLI calls,
on the data directory
(``EnergyLocal``, mixed into LocalClient) and through the API (``EnergyRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import Protocol


class EnergyOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""


class EnergyLocal:
    """On the data directory."""


class EnergyRemote:
    """Through the API."""
