"""The client operations of tranche acceptance: what the CLI calls, on the data directory
(``AcceptanceLocal``, mixed into LocalClient) and through the API (``AcceptanceRemote``,
mixed into RemoteClient), each answering the same view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from compute.client import shapes
from compute.client.ops_support import LocalHost, RemoteHost, plain, server

if TYPE_CHECKING:
    pass

View = dict[str, Any]

TRANCHE = {
    "name": shapes.STR,
    "state": shapes.STR,
    "phase": shapes.STR,
    "threshold": shapes.NUM,
    "nodes": shapes.INT,
    "created_at": shapes.Time,
    "created_by": shapes.STR,
    "started_at": shapes.OptTime,
    "judged_at": shapes.OptTime,
    "burn_in": dict,
    "accepted": (int, type(None)),
    "share": shapes.OPT_NUM,
    "error": shapes.STR,
}
TRANCHES = {"tranches": [TRANCHE]}
REPORT_NODE = {
    "node": shapes.STR,
    "verdict": shapes.STR,
    "burn_in": shapes.STR,
    "note": shapes.STR,
    "fabric": shapes.STR,
    "links": [[shapes.STR]],
    "evidence": [dict],
    "pool": shapes.STR,
    "state": shapes.STR,
}
REPORT = {
    "name": shapes.STR,
    "state": shapes.STR,
    "phase": shapes.STR,
    "final": bool,
    "threshold": shapes.NUM,
    "started_at": shapes.OPT_STR,
    "judged_at": shapes.OPT_STR,
    "total": shapes.INT,
    "accepted": shapes.INT,
    "failed": shapes.INT,
    "not_tested": shapes.INT,
    "share": shapes.NUM,
    "live": bool,
    "rma": [dict],
    "suspect_nodes": dict,
    "suspect_links": [[shapes.STR]],
    "fabric": [dict],
    "nodes": [REPORT_NODE],
}


class AcceptanceOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def acceptance_create(
        self, name: str, nodes: Sequence[str], pool: str | None, threshold: float
    ) -> View:
        """POST /acceptance: a new tranche of ``nodes`` (hostlists) or of ``pool``."""
        ...

    def acceptance_run(self, name: str) -> View:
        """POST /acceptance/{name}/run: the run starts; the control plane carries it out."""
        ...

    def acceptance_status(self, name: str) -> View:
        """GET /acceptance/{name}: where its run stands."""
        ...

    def acceptance_list(self) -> View:
        """GET /acceptance: every tranche."""
        ...

    def acceptance_report(self, name: str) -> View:
        """GET /acceptance/{name}/report: its report."""
        ...


def _svc() -> Any:
    return server("compute.services.acceptance")


class AcceptanceLocal:
    """On the data directory."""

    def acceptance_create(
        self: LocalHost, name: str, nodes: Sequence[str], pool: str | None, threshold: float
    ) -> View:
        rt = self.runtime()
        svc = _svc()
        made = svc.create(
            rt.store, rt.clock, name, self.actor, nodes=nodes, pool=pool, threshold=threshold
        )
        return plain(svc.view(made))

    def acceptance_run(self: LocalHost, name: str) -> View:
        rt = self.runtime()
        return plain(_svc().view(_svc().run(rt.store, rt.clock, name)))

    def acceptance_status(self: LocalHost, name: str) -> View:
        return plain(_svc().view(_svc().get(self.runtime().store, name)))

    def acceptance_list(self: LocalHost) -> View:
        return plain(_svc().listing(self.runtime().store))

    def acceptance_report(self: LocalHost, name: str) -> View:
        return plain(_svc().report(self.runtime().store, name))


def _path(name: str, tail: str = "") -> str:
    return f"/acceptance/{quote(name, safe='')}{tail}"


class AcceptanceRemote:
    """Through the API."""

    def acceptance_create(
        self: RemoteHost, name: str, nodes: Sequence[str], pool: str | None, threshold: float
    ) -> View:
        body: View = {"name": name, "threshold": threshold}
        body.update({"pool": pool} if pool is not None else {"nodes": list(nodes)})
        found: View = shapes.check(self.call("POST", "/acceptance", body=body), TRANCHE, "answer")
        return found

    def acceptance_run(self: RemoteHost, name: str) -> View:
        found: View = shapes.check(self.call("POST", _path(name, "/run")), TRANCHE, "answer")
        return found

    def acceptance_status(self: RemoteHost, name: str) -> View:
        found: View = shapes.check(self.call("GET", _path(name)), TRANCHE, "answer")
        return found

    def acceptance_list(self: RemoteHost) -> View:
        found: View = shapes.check(self.call("GET", "/acceptance"), TRANCHES, "answer")
        return found

    def acceptance_report(self: RemoteHost, name: str) -> View:
        found: View = shapes.check(self.call("GET", _path(name, "/report")), REPORT, "answer")
        return found
