"""The client operations of energy and GPU-hours for billing: what the CLI calls,
on the data directory
(``EnergyLocal``, mixed into LocalClient) and through the API (``EnergyRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from compute.client import shapes
from compute.client.ops_support import LocalHost, RemoteHost, plain, server

if TYPE_CHECKING:
    pass

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


class EnergyLocal:
    """On the data directory."""

    def tenant_billing(
        self: LocalHost, name: str, days: int | None, first: str | None, last: str | None
    ) -> View:
        billing, views = server("compute.services.billing"), server("compute.views")
        rt = self.runtime()
        since, until = billing.span(rt.clock.now(), days, first, last)
        b, used = billing.tenant_billing(rt, name, since, until)
        return plain({**views.usage_view(used), "billing": billing.as_dict(b)})

    def fleet_billing(self: LocalHost, first: str | None, last: str | None) -> View:
        return plain(server("compute.services.billing").fleet_answer(self.runtime(), first, last))


def _window(days: int | None, first: str | None, last: str | None) -> list[tuple[str, str | int]]:
    q: list[tuple[str, str | int]] = [("days", days)] if days is not None else []
    return q + [(k, v) for k, v in (("from", first), ("to", last)) if v is not None]


class EnergyRemote:
    """Through the API."""

    def tenant_billing(
        self: RemoteHost, name: str, days: int | None, first: str | None, last: str | None
    ) -> View:
        from urllib.parse import quote

        path = f"/tenants/{quote(name, safe='')}/usage"
        found: View = shapes.check(
            self.call("GET", path, _window(days, first, last)), TENANT_USAGE, "answer"
        )
        return found

    def fleet_billing(self: RemoteHost, first: str | None, last: str | None) -> View:
        found: View = shapes.check(
            self.call("GET", "/usage", _window(None, first, last)), BILLING, "answer"
        )
        return found
