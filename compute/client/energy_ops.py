"""The client operations of energy and GPU-hours for billing: what the CLI calls,
on the data directory
(``EnergyLocal``, mixed into LocalClient) and through the API (``EnergyRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from compute.client import shapes

if TYPE_CHECKING:
    from compute.runtime import Runtime

# compute.client.protocol's View (it imports this module: not imported from it here).
View = dict[str, Any]

_ROW = {
    "tenant": shapes.STR,
    "holder": shapes.STR,
    "day": shapes.STR,
    "pool": shapes.STR,
    "gpu_model": shapes.STR,
    "gpu_hours": shapes.NUM,
    "energy_kwh": shapes.NUM,
    "facility_kwh": shapes.NUM,
    "sources": shapes.STR,
}
BILLING = {
    "since": shapes.Time,
    "until": shapes.Time,
    "rows": [_ROW],
    "totals": {"gpu_hours": shapes.NUM, "energy_kwh": shapes.NUM, "facility_kwh": shapes.NUM},
    "gaps": [{"start": shapes.Time, "end": shapes.Time}],
    "notes": [shapes.STR],
}
TENANT_USAGE = {**shapes.USAGE, "billing": BILLING}


class EnergyOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def tenant_billing(
        self, name: str, days: int | None, first: str | None, last: str | None
    ) -> View:
        """GET /tenants/{name}/usage: usage_view with ``billing`` (GPU-hours, energy and
        facility energy per UTC day, pool and GPU model) beside it."""

    def fleet_billing(self, first: str | None, last: str | None) -> View:
        """GET /usage?from=&to=: every tenant's, idle and out of service (default: the UTC
        month so far)."""


class _Local(Protocol):
    def runtime(self, extra: dict[str, Any] | None = None) -> Runtime: ...


class _Remote(Protocol):
    def call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str | int | bool]] = (),
        body: Any = None,
    ) -> Any: ...


def _server(module: str) -> Any:
    """A server-side module, loaded when a local operation runs. By name, so that the remote
    CLI, which imports this module for `EnergyRemote`, never reaches the store's libraries
    (the "remote CLI starts without the server's libraries" contract in pyproject.toml)."""
    import importlib

    return importlib.import_module(module)


def _plain(view: dict[str, Any]) -> View:
    """A view as JSON gives it back (what the API's encoder makes of it)."""
    import json

    found: View = json.loads(json.dumps(view))
    return found


class EnergyLocal:
    """On the data directory."""

    def tenant_billing(
        self: _Local, name: str, days: int | None, first: str | None, last: str | None
    ) -> View:
        billing, views = _server("compute.services.billing"), _server("compute.views")
        rt = self.runtime()
        since, until = billing.span(rt.clock.now(), days, first, last)
        b, used = billing.tenant_billing(rt, name, since, until)
        return _plain({**views.usage_view(used), "billing": billing.as_dict(b)})

    def fleet_billing(self: _Local, first: str | None, last: str | None) -> View:
        return _plain(_server("compute.services.billing").fleet_answer(self.runtime(), first, last))


def _window(days: int | None, first: str | None, last: str | None) -> list[tuple[str, str | int]]:
    q: list[tuple[str, str | int]] = [("days", days)] if days is not None else []
    return q + [(k, v) for k, v in (("from", first), ("to", last)) if v is not None]


class EnergyRemote:
    """Through the API."""

    def tenant_billing(
        self: _Remote, name: str, days: int | None, first: str | None, last: str | None
    ) -> View:
        from urllib.parse import quote

        path = f"/tenants/{quote(name, safe='')}/usage"
        found: View = shapes.check(
            self.call("GET", path, _window(days, first, last)), TENANT_USAGE, "answer"
        )
        return found

    def fleet_billing(self: _Remote, first: str | None, last: str | None) -> View:
        found: View = shapes.check(
            self.call("GET", "/usage", _window(None, first, last)), BILLING, "answer"
        )
        return found
