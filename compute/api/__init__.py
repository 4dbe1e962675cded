"""The HTTP API: thin routers over the services.

``create_app`` is imported on first use, so what the CLI borrows from here (the JSON
views) does not load FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from compute.api.app import create_app

        return create_app
    raise AttributeError(name)
