"""The HTTP API: thin routers over the services."""

from compute.api.app import create_app

__all__ = ["create_app"]
