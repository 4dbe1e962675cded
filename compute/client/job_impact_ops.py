"""The client operations of job impact: what the CLI calls, on the data directory
(``JobImpactLocal``, mixed into LocalClient) and through the API (``JobImpactRemote``,
mixed into RemoteClient), each answering the same view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from compute.client import shapes
from compute.client.ops_support import LocalHost, RemoteHost, server

if TYPE_CHECKING:
    pass

# compute.client.protocol's View (it imports this module: not imported from it here).
View = dict[str, Any]

INCIDENT = {
    "work": shapes.STR,
    "pool": shapes.STR,
    "node": shapes.STR,
    "tenant": shapes.STR,
    "cause": shapes.STR,
    "at": shapes.Time,
    "gpus": shapes.INT,
    "start": shapes.Time,
    "end": shapes.OptTime,
    "state": shapes.STR,
    "gpu_hours_lost": shapes.NUM,
    "check": shapes.STR,
    "reason": shapes.STR,
}
TENANT_INCIDENTS = {
    "tenant": shapes.STR,
    "month": shapes.STR,
    "gpu_hours_lost": shapes.NUM,
    "count": shapes.INT,
    "incidents": [INCIDENT],
}


class JobImpactOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def tenant_incidents(self, name: str, month: str | None) -> View:
        """GET /tenants/{name}/incidents?month=: the tenant's jobs and pods hit by faults in
        the UTC month (default this one), and the GPU-hours they lost."""


class JobImpactLocal:
    """On the data directory."""

    def tenant_incidents(self: LocalHost, name: str, month: str | None) -> View:
        svc = server("compute.services.job_impact")
        rt = self.runtime()
        view: View = svc.impact_view(svc.tenant_impact(rt.store, name, month, rt.clock.now()))
        return view


class JobImpactRemote:
    """Through the API."""

    def tenant_incidents(self: RemoteHost, name: str, month: str | None) -> View:
        from urllib.parse import quote

        query: list[tuple[str, str | int | bool]] = [("month", month)] if month else []
        path = f"/tenants/{quote(name, safe='')}/incidents"
        found: View = shapes.check(self.call("GET", path, query), TENANT_INCIDENTS, "answer")
        return found
