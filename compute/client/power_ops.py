"""The client operations of power: readings, caps, reverts: what the CLI calls,
on the data directory
(``PowerLocal``, mixed into LocalClient) and through the API (``PowerRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import Protocol


class PowerOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""


class PowerLocal:
    """On the data directory."""


class PowerRemote:
    """Through the API."""
