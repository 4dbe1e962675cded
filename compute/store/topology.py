"""Topology, racks' standing against their budgets and the capacity history, kept in the
store (tables in compute/store/topology_models.py).

Kept here, not in a process, so every replica behind a load balancer answers the same, an
event raised once is not raised again after a restart, and the gate of any process sees a
rack over its budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, cast, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from compute.domain import Rack, Room, Site
from compute.store.models import NodeRow, RackPowerRow, RackRow, RoomRow
from compute.store.repository import Store, Tx
from compute.store.rows import table_of
from compute.store.topology_models import (
    CapacitySampleRow,
    NodePlaceRow,
    RackBudgetRow,
    RackDetailRow,
    RoomDetailRow,
)

# Nodes not placed anywhere yet: where inventory puts a node no one placed.
UNPLACED = frozenset({"", "unassigned"})


@dataclass(frozen=True, slots=True)
class RackInfo:
    """A rack as the store knows it, with what the configuration adds."""

    name: str
    room: str
    budget_watts: float
    row: str = ""
    pdus: tuple[str, ...] = ()
    cooling_limit_watts: float | None = None

    @property
    def limit_watts(self) -> float:
        """What the rack may draw: its budget, or its cooling limit where lower."""
        if self.cooling_limit_watts is None:
            return self.budget_watts
        return min(self.budget_watts, self.cooling_limit_watts)


@dataclass(frozen=True, slots=True)
class RoomInfo:
    name: str
    site: str
    cooling_limit_watts: float | None = None


@dataclass(frozen=True, slots=True)
class Standing:
    """A rack against its budget as last read (``over`` includes "forecast to be")."""

    rack: str
    over: bool
    since: datetime
    at: datetime
    watts: float
    forecast_watts: float
    limit_watts: float
    capped: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


def put_config(
    tx: Tx,
    sites: Sequence[Site],
    rooms: Sequence[tuple[Room, float | None]],
    racks: Sequence[tuple[RackInfo, Rack]],
) -> None:
    """The configuration's topology, added or updated by name (what else is stored stays)."""
    tx.put_topology(sites, [r for r, _ in rooms], [rack for _, rack in racks], [])
    for room, cooling in rooms:
        tx.s.merge(RoomDetailRow(room=room.name, cooling_limit_watts=cooling))
    for info, _ in racks:
        tx.s.merge(
            RackDetailRow(
                rack=info.name,
                row=info.row,
                pdus=list(info.pdus),
                cooling_limit_watts=info.cooling_limit_watts,
            )
        )


def place(store: Store, wanted: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Each node of ``wanted`` put in its rack where it is unplaced or still where the
    configuration last put it (a workload manager's own placement is left alone): node →
    (from, to) for those moved."""
    if not wanted:
        return {}
    moved: dict[str, tuple[str, str]] = {}
    with store.transaction() as tx:
        placed = {r.node: r.rack for r in tx.s.scalars(select(NodePlaceRow))}
        t = table_of(NodeRow)
        for name, rack in tx.s.execute(select(t.c.name, t.c.rack)):
            want = wanted.get(name)
            if want is None or rack == want:
                continue
            if rack in UNPLACED or placed.get(name) == rack:
                moved[name] = (rack, want)
        for name, (old, new) in moved.items():
            tx.s.execute(
                update(t)
                .where(t.c.name == name, t.c.rack == old)
                .values(rack=new, version=t.c.version + 1)
            )
        # What the configuration places now, replacing what it placed before (in batches:
        # a first start places every node it names).
        changed = sorted(n for n, r in wanted.items() if placed.get(n) != r)
        stale = sorted((set(placed) - set(wanted)) | set(changed))
        for i in range(0, len(stale), 500):
            tx.s.execute(delete(NodePlaceRow).where(NodePlaceRow.node.in_(stale[i : i + 500])))
        if changed:
            tx.s.execute(
                insert(table_of(NodePlaceRow)), [{"node": n, "rack": wanted[n]} for n in changed]
            )
    return moved


def racks(store: Store) -> list[RackInfo]:
    with Session(store.engine) as s:
        details = {d.rack: d for d in s.scalars(select(RackDetailRow))}
        out = []
        for r in s.scalars(select(RackRow).order_by(RackRow.name)):
            d = details.get(r.name)
            out.append(
                RackInfo(
                    name=r.name,
                    room=r.room,
                    budget_watts=r.power_budget_watts,
                    row=d.row if d else "",
                    pdus=tuple(d.pdus or ()) if d else (),
                    cooling_limit_watts=d.cooling_limit_watts if d else None,
                )
            )
        return out


def rooms(store: Store) -> list[RoomInfo]:
    with Session(store.engine) as s:
        cooling = {d.room: d.cooling_limit_watts for d in s.scalars(select(RoomDetailRow))}
        return [
            RoomInfo(r.name, r.site, cooling.get(r.name))
            for r in s.scalars(select(RoomRow).order_by(RoomRow.name))
        ]


@dataclass(frozen=True, slots=True)
class Trend:
    """A rack's draw over a window: the newest reading and the least-squares slope."""

    watts: float
    per_second: float
    points: int


def rack_trends(store: Store, since: datetime) -> dict[str, Trend]:
    """Each rack's newest draw since ``since`` and its trend (watts a second), summed in
    the database: reading every sample of 1,280 racks over half an hour into Python cost
    over a second a sweep."""
    at, watts = RackPowerRow.at, RackPowerRow.watts
    with Session(store.engine) as s:
        x = _seconds_since(s, at, since)
        q = (
            select(
                RackPowerRow.rack,
                func.count(),
                func.sum(x),
                func.sum(watts),
                func.sum(x * x),
                func.sum(x * watts),
                func.max(RackPowerRow.id),
            )
            .where(at >= since)
            .group_by(RackPowerRow.rack)
        )
        sums = {r[0]: r[1:] for r in s.execute(q)}
        newest = (
            {
                rack: w
                for rack, w in s.execute(
                    select(RackPowerRow.rack, watts).where(
                        RackPowerRow.id.in_([v[5] for v in sums.values()])
                    )
                )
            }
            if sums
            else {}
        )
    out = {}
    for rack, (n, *moments, _id) in sums.items():
        # PostgreSQL sums numerics as Decimal: the arithmetic is in floats either way.
        sx, sy, sxx, sxy = (float(m) for m in moments)
        out[rack] = Trend(float(newest[rack]), _slope(int(n), sx, sy, sxx, sxy), int(n))
    return out


def _seconds_since(s: Session, at: Any, since: datetime) -> Any:
    """``at`` as seconds after ``since``, in the store's SQL dialect."""
    naive = since.astimezone(UTC).replace(tzinfo=None)
    if s.get_bind().dialect.name == "sqlite":
        return (func.julianday(at) - func.julianday(literal(naive.isoformat(" ")))) * 86_400.0
    return cast(func.extract("epoch", at - literal(naive)), Float)


def _slope(n: int, sx: float, sy: float, sxx: float, sxy: float) -> float:
    """Least squares from the sums; 0 with fewer than two points or all at one instant."""
    if n < 2:
        return 0.0
    den = n * sxx - sx * sx
    # Points within a millisecond of each other: one instant (compute/services/forecast.py).
    if den <= n * n * 1e-6:
        return 0.0
    return float((n * sxy - sx * sy) / den)


def standings(store: Store) -> list[Standing]:
    with Session(store.engine) as s:
        return [_standing(r) for r in s.scalars(select(RackBudgetRow).order_by(RackBudgetRow.rack))]


def over_racks(store: Store) -> dict[str, Standing]:
    """The racks over their budgets (or forecast to be) now."""
    with Session(store.engine) as s:
        q = select(RackBudgetRow).where(RackBudgetRow.over.is_(True))
        return {r.rack: _standing(r) for r in s.scalars(q)}


def _standing(r: RackBudgetRow) -> Standing:
    return Standing(
        rack=r.rack,
        over=r.over,
        since=r.since,
        at=r.at,
        watts=r.watts,
        forecast_watts=r.forecast_watts,
        limit_watts=r.limit_watts,
        capped=tuple(r.capped or ()),
        detail=dict(r.detail or {}),
    )


def put_standings(tx: Tx, rows: Sequence[Standing]) -> None:
    """The standings, replacing what was stored for those racks: one delete and one
    batched insert (an ORM merge a row cost seconds a sweep at 1,280 racks)."""
    if not rows:
        return
    t = table_of(RackBudgetRow)
    tx.s.execute(delete(t).where(t.c.rack.in_([st.rack for st in rows])))
    tx.s.execute(
        insert(t),
        [
            {
                "rack": st.rack,
                "over": st.over,
                "since": st.since,
                "at": st.at,
                "watts": st.watts,
                "forecast_watts": st.forecast_watts,
                "limit_watts": st.limit_watts,
                "capped": list(st.capped),
                "detail": dict(st.detail),
            }
            for st in rows
        ],
    )


def last_sample_at(store: Store) -> datetime | None:
    with Session(store.engine) as s:
        found: datetime | None = s.scalar(select(func.max(CapacitySampleRow.at)))
        return found


def add_samples(
    store: Store, at: datetime, counts: Mapping[tuple[str, str, str], int], before: datetime
) -> None:
    """One capacity sample (GPUs by pool, model and state) at ``at``; samples older than
    ``before`` deleted in the same transaction (the history stays bounded)."""
    with store.transaction() as tx:
        tx.s.execute(delete(CapacitySampleRow).where(CapacitySampleRow.at < before))
        tx.s.add_all(
            CapacitySampleRow(at=at, pool=p, gpu_model=m, state=st, gpus=g)
            for (p, m, st), g in sorted(counts.items())
        )


def samples_since(store: Store, since: datetime) -> list[tuple[datetime, str, str, str, int]]:
    """(at, pool, model, state, gpus) since ``since``, oldest first."""
    with Session(store.engine) as s:
        q = (
            select(
                CapacitySampleRow.at,
                CapacitySampleRow.pool,
                CapacitySampleRow.gpu_model,
                CapacitySampleRow.state,
                CapacitySampleRow.gpus,
            )
            .where(CapacitySampleRow.at >= since)
            .order_by(CapacitySampleRow.at, CapacitySampleRow.id)
        )
        return [(at, p, m, st, g) for at, p, m, st, g in s.execute(q)]
