"""Power readings on the control plane: a node's post stored (latest, series, its rack's
sum), simulated nodes' agents run after a sweep, the fleet sampled and old samples folded.

Real nodes post (``POST /api/v1/nodes/{name}/power``, the node check); simulated nodes have
no process of their own, so after a sweep the control plane runs health/power.py's agent
for each simulated node that has a cap to apply or restore, on the simulated fleet, through
the same validation and service calls a post goes through."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from compute.domain import Node
from compute.errors import ComputeError
from compute.services.power_report import PowerReport
from compute.store import power as readings
from compute.store import power_caps as kept
from compute.store.models import NodeRow
from compute.store.power import Latest, Retention

if TYPE_CHECKING:
    from compute.runtime import Runtime

SAMPLED_KEY = "power.sampled_at"
COMPACTED_KEY = "power.compacted_at"


def retention(rt: Runtime) -> Retention:
    p = rt.settings.power
    return Retention(
        every=timedelta(seconds=p.sample_interval_seconds),
        raw=timedelta(hours=p.raw_retention_hours),
        bucket=p.bucket_seconds,
        keep=timedelta(days=p.retention_days),
        max_rows=p.max_samples_per_series,
        stale=timedelta(seconds=p.stale_seconds),
    )


def store_report(rt: Runtime, node: Node, report: PowerReport) -> Latest:
    latest = Latest(
        node=node.name,
        rack=node.rack,
        at=rt.clock.now(),
        gpu_watts=report.gpu_watts,
        node_watts=report.node_watts,
        node_source=report.node_source if report.node_watts is not None else "",
        node_error=report.node_error,
        gpus=tuple(g.model_dump() for g in report.gpus),
    )
    readings.put_readings(rt.store, [latest], retention(rt))
    return latest


def simulated_agents(rt: Runtime) -> list[str]:
    """The agent of each simulated node with a cap to apply or restore, run in process."""
    dc = rt.datacenter
    if dc is None:
        return []
    due = {c.node for c in kept.listed(rt.store, states=(*kept.TO_APPLY, *kept.TO_RESTORE))}
    if not due:
        return []
    from compute.services.power_caps import node_exchange
    from health.power import exchange
    from health.simulated import SimulatedTelemetry

    telemetry = SimulatedTelemetry(dc.fleet_access)
    errors: list[str] = []
    for name in sorted(due):
        node = rt.store.node(name)
        if node is None or name not in dc.fleet.nodes:
            continue  # a real node: its own agent applies it when it next reports

        def post(body: dict[str, Any], name: str = name) -> dict[str, Any]:
            report = PowerReport.model_validate(body)
            return node_exchange(rt, name, report, f"node:{name} (simulated agent)")

        try:
            _, notes = exchange(telemetry.power_source(name), post)
        except (ComputeError, ValidationError) as exc:
            errors.append(f"power: simulated agent of {name}: {str(exc)[:200]}")
            continue
        errors += [f"power: {name}: {n}" for n in notes if "failed" in n]
    return errors


def sample_and_compact(rt: Runtime, now: datetime) -> list[str]:
    """Every sample interval, each simulated node's draw (what the sweep just read, on its
    record) and its rack's sum as samples; every bucket, old samples folded."""
    ret = retention(rt)
    errors: list[str] = []
    try:
        if rt.datacenter is not None and _due(rt, SAMPLED_KEY, now, ret.every):
            _sample_simulated(rt, now, ret)
        if _due(rt, COMPACTED_KEY, now, timedelta(seconds=ret.bucket)):
            readings.compact(rt.store, now, ret)
    except ComputeError as exc:
        errors.append(f"power samples: {exc}")
    return errors


def _due(rt: Runtime, key: str, now: datetime, every: timedelta) -> bool:
    last = (rt.store.meta(key) or {}).get("at")
    if isinstance(last, str) and now - datetime.fromisoformat(last) < every:
        return False
    with rt.store.transaction() as tx:
        tx.set_meta(key, {"at": now.isoformat()})
    return True


def _sample_simulated(rt: Runtime, now: datetime, ret: Retention) -> None:
    dc = rt.datacenter
    assert dc is not None
    q = select(NodeRow.name, NodeRow.rack, NodeRow.power_watts)
    with Session(rt.store.engine) as s:
        rows = [(n, r, w) for n, r, w in s.execute(q).all() if n in dc.fleet.nodes and w]
    readings.add_samples(rt.store, rows, now)
