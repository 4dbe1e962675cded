"""The client operations of power: readings, caps, reverts: what the CLI calls,
on the data directory
(``PowerLocal``, mixed into LocalClient) and through the API (``PowerRemote``, mixed into
RemoteClient), each answering the same view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from compute.client import shapes
from compute.client.ops_support import LocalHost, plain, plain_all, server
from compute.client.shapes import NUM, OPT_NUM, OPT_STR, STR, Map, OptTime, Time

View = dict[str, Any]

CAP = {
    "id": int,
    "node": STR,
    "rack": STR,
    "gpus": (list, type(None)),
    "watts": NUM,
    "state": STR,
    "source": STR,
    "actor": STR,
    "reason": STR,
    "created_at": Time,
    "expires_at": OptTime,
    "before": Map(OPT_NUM),
    "clamped": Map(OPT_NUM),
    "after": Map(OPT_NUM),
    "detail": STR,
}
CAPS = {"caps": [CAP]}
SHOW = {
    "node": STR,
    "rack": STR,
    "reading": (dict, type(None)),
    "caps": [CAP],
    "series": [{"at": Time, "watts": NUM, "peak_watts": NUM}],
    "actions": [dict],
}
SHOW_READING = {
    "at": Time,
    "stale": bool,
    "gpu_watts": NUM,
    "node_watts": OPT_NUM,
    "node_source": STR,
    "node_error": OPT_STR,
    "gpus": [
        {
            "index": int,
            "power_watts": NUM,
            "limit_watts": OPT_NUM,
            "default_limit_watts": OPT_NUM,
            "min_limit_watts": OPT_NUM,
            "max_limit_watts": OPT_NUM,
        }
    ],
}


class PowerOps(Protocol):
    """The operations (mixed into compute.client.protocol.Client)."""

    def power_caps(self, active: bool, node: str | None) -> list[View]: ...

    def power_cap(
        self,
        nodes: Sequence[str] | None,
        rack: str | None,
        watts: float,
        gpus: Sequence[int] | None,
        reason: str,
        duration_seconds: float | None,
    ) -> list[View]: ...

    def power_revert(
        self,
        nodes: Sequence[str] | None,
        rack: str | None,
        caps: Sequence[int] | None,
        reason: str,
    ) -> list[View]: ...

    def power_show(self, node: str) -> View: ...


class PowerLocal:
    """On the data directory."""

    def power_caps(self: LocalHost, active: bool, node: str | None) -> list[View]:
        power_views = server("compute.services.power_views")
        found: list[View] = plain_all(power_views.listed(self.runtime(), active=active, node=node,
                                                      limit=10_000))  # fmt: skip
        return found

    def power_cap(
        self: LocalHost,
        nodes: Sequence[str] | None,
        rack: str | None,
        watts: float,
        gpus: Sequence[int] | None,
        reason: str,
        duration_seconds: float | None,
    ) -> list[View]:
        power_views = server("compute.services.power_views")
        made: list[View] = plain_all(
            power_views.cap(
                self.runtime(), nodes=nodes, rack=rack, watts=watts, gpus=gpus, reason=reason,
                duration_seconds=duration_seconds, actor=self.actor,
            )
        )  # fmt: skip
        return made

    def power_revert(
        self: LocalHost,
        nodes: Sequence[str] | None,
        rack: str | None,
        caps: Sequence[int] | None,
        reason: str,
    ) -> list[View]:
        power_views = server("compute.services.power_views")
        done: list[View] = plain_all(
            power_views.revert(
                self.runtime(), nodes=nodes, rack=rack, cap_ids=caps, reason=reason,
                actor=self.actor,
            )
        )  # fmt: skip
        return done

    def power_show(self: LocalHost, node: str) -> View:
        power_views = server("compute.services.power_views")
        shown: View = plain(power_views.show(self.runtime(), node))
        return shown


class PowerRemote:
    """Through the API."""

    if TYPE_CHECKING:

        def _get(self, path: str, shape: Any, query: Sequence[tuple[str, Any]] = ()) -> Any: ...

        def _post(self, path: str, shape: Any, body: Any = None) -> Any: ...

    def power_caps(self, active: bool, node: str | None) -> list[View]:
        query: list[tuple[str, Any]] = [("all", not active)]
        query += [("node", node)] if node is not None else []
        found: list[View] = self._get("/power/caps", CAPS, query)["caps"]
        return found

    def power_cap(
        self,
        nodes: Sequence[str] | None,
        rack: str | None,
        watts: float,
        gpus: Sequence[int] | None,
        reason: str,
        duration_seconds: float | None,
    ) -> list[View]:
        body = {
            "nodes": None if nodes is None else list(nodes),
            "rack": rack,
            "watts": float(watts),
            "gpus": None if gpus is None else list(gpus),
            "reason": reason,
            "duration_seconds": duration_seconds,
        }
        made: list[View] = self._post("/power/caps", CAPS, body)["caps"]
        return made

    def power_revert(
        self,
        nodes: Sequence[str] | None,
        rack: str | None,
        caps: Sequence[int] | None,
        reason: str,
    ) -> list[View]:
        body = {
            "nodes": None if nodes is None else list(nodes),
            "rack": rack,
            "caps": None if caps is None else list(caps),
            "reason": reason,
        }
        done: list[View] = self._post("/power/caps/revert", CAPS, body)["caps"]
        return done

    def power_show(self, node: str) -> View:
        shown: View = self._get(f"/nodes/{quote(node, safe='')}/power", SHOW)
        if shown["reading"] is not None:
            shapes.check(shown["reading"], SHOW_READING, "answer.reading")
        return shown
