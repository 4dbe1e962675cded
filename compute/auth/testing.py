"""Test identities, shipped as API: a token for a role, created directly in a store.

    token = token_for(rt.store, "operator")
    client.get("/api/v1/nodes", headers=bearer(token))

The store and the services load only when called: compute.auth itself stays free of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from compute.auth.principal import local_principal

if TYPE_CHECKING:
    from compute.store import Store


def token_for(
    store: Store,
    role: str,
    *,
    tenant: str | None = None,
    node: str | None = None,
    name: str = "test",
    lifetime: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """Issue a token as the local operator would (``tokens create``); its plaintext.
    ``now`` in the past with a short ``lifetime`` gives one already expired."""
    from compute.services import tokens

    now = now or datetime.now(UTC)
    created = tokens.create(
        store,
        local_principal("test"),
        role=role,
        tenant=tenant,
        node=node,
        lifetime=lifetime,
        name=name,
        now=now,
        at=now,
    )
    return created.plaintext


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def operator_headers(store: Store) -> dict[str, str]:
    """Headers of a new operator's token: for a client that tests what an operator does."""
    return bearer(token_for(store, "operator", name="test operator"))
