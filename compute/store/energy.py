"""Energy per holder (a tenant, idle, out of service), pool, GPU model and UTC hour, kept.

What one sweep attributes (compute/services/energy.py) is added here with the fleet's mark
moved in the same transaction, and only if the mark is still where the sweep read it: two
replicas, or a restart half-way through, count no interval twice. Whole millijoules, so the
parts of a node's energy add up to it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from compute.store.energy_models import EnergyGapRow, EnergyHourRow, EnergyMarkRow, EnergyTotalRow
from compute.store.models import AllocationRow, NodeRow
from compute.store.repository import Store
from compute.store.rows import table_of
from compute.store.upsert import upsert
from health.policy import Lifecycle

FLEET = "fleet"
TENANT, IDLE, OUT_OF_SERVICE = "tenant", "idle", "out_of_service"
HOLDERS = (TENANT, IDLE, OUT_OF_SERVICE)

# (holder, tenant, pool, gpu_model, hour) -> (IT mJ, facility mJ, GPU-us)
Key = tuple[str, str, str, str, datetime]
Parts = Mapping[Key, tuple[int, int, int]]

_HOURS = table_of(EnergyHourRow)
_MARKS = table_of(EnergyMarkRow)
_GAPS = table_of(EnergyGapRow)
_TOTALS = table_of(EnergyTotalRow)
_NODES = table_of(NodeRow)
_ALLOCS = table_of(AllocationRow)
IN_SERVICE = Lifecycle.IN_SERVICE.value


@dataclass(frozen=True, slots=True)
class EnergyHour:
    holder: str
    tenant: str
    pool: str
    gpu_model: str
    hour: datetime
    it_mj: int
    facility_mj: int
    gpu_us: int


@dataclass(frozen=True, slots=True)
class Metered:
    """What energy needs of a node: where it is, what it holds, what it drew."""

    name: str
    pool: str
    rack: str
    gpu_model: str
    gpu_count: int
    in_service: bool
    power_watts: float


@dataclass(frozen=True, slots=True)
class Held:
    tenant: str
    node: str
    gpus: int


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime
    end: datetime


def metered(store: Store) -> tuple[list[Metered], list[Held]]:
    """Every node's power reading and every allocation, as the last sweep stored them: only
    the columns energy needs (reading whole nodes was most of an accrual's cost)."""
    n, a = _NODES, _ALLOCS
    cols = (n.c.name, n.c.pool, n.c.rack, n.c.gpu_model, n.c.gpu_count, n.c.state)
    with Session(store.engine) as s:
        nodes = [
            Metered(name, pool, rack, model, count, state == IN_SERVICE, watts)
            for name, pool, rack, model, count, state, watts in s.execute(
                select(*cols, n.c.power_watts).order_by(n.c.name)
            )
        ]
        held = [
            Held(t, node, g) for t, node, g in s.execute(select(a.c.tenant, a.c.node, a.c.gpus))
        ]
    return nodes, held


def mark(store: Store) -> datetime | None:
    """How far the fleet's energy is counted; None before the first sweep."""
    with Session(store.engine) as s:
        return s.scalar(select(EnergyMarkRow.counted_until).where(EnergyMarkRow.name == FLEET))


def start(store: Store, at: datetime) -> bool:
    """The first mark; False when there is one already (another replica made it)."""
    with store.transaction() as tx:
        conn = tx.s.connection()
        made = conn.execute(
            upsert(conn, _MARKS)
            .values(name=FLEET, counted_until=at)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(_MARKS.c.name)
        ).first()
        return made is not None


def add(store: Store, expect: datetime, to: datetime, parts: Parts, gap: Gap | None = None) -> bool:
    """Add ``parts`` (or record ``gap``) and move the mark from ``expect`` to ``to``, in one
    transaction; False, adding nothing, when the mark has moved meanwhile."""
    with store.transaction() as tx:
        conn = tx.s.connection()
        moved = conn.execute(
            update(_MARKS)
            .where(_MARKS.c.name == FLEET, _MARKS.c.counted_until == expect)
            .values(counted_until=to)
            .returning(_MARKS.c.name)
        ).first()
        if moved is None:
            return False
        if gap is not None:
            conn.execute(
                upsert(conn, _GAPS)
                .values(start=gap.start, end=gap.end)
                .on_conflict_do_nothing(index_elements=["start"])
            )
        if parts:
            ins = upsert(conn, _HOURS)
            # In key order, so replicas adding at once take the rows' locks in one order.
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["holder", "tenant", "pool", "gpu_model", "hour"],
                    set_={
                        "it_mj": _HOURS.c.it_mj + ins.excluded.it_mj,
                        "facility_mj": _HOURS.c.facility_mj + ins.excluded.facility_mj,
                        "gpu_us": _HOURS.c.gpu_us + ins.excluded.gpu_us,
                    },
                ),
                [
                    {
                        "holder": h,
                        "tenant": t,
                        "pool": p,
                        "gpu_model": m,
                        "hour": hour,
                        "it_mj": it,
                        "facility_mj": fac,
                        "gpu_us": us,
                    }
                    for (h, t, p, m, hour), (it, fac, us) in sorted(parts.items())
                ],
            )
            _add_totals(conn, parts)
        return True


def _add_totals(conn: Connection, parts: Parts) -> None:
    sums: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for (h, t, p, m, _), (it, fac, _us) in parts.items():
        was = sums.get((h, t, p, m), (0, 0))
        sums[(h, t, p, m)] = (was[0] + it, was[1] + fac)
    ins = upsert(conn, _TOTALS)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["holder", "tenant", "pool", "gpu_model"],
            set_={
                "it_mj": _TOTALS.c.it_mj + ins.excluded.it_mj,
                "facility_mj": _TOTALS.c.facility_mj + ins.excluded.facility_mj,
            },
        ),
        [
            {"holder": h, "tenant": t, "pool": p, "gpu_model": m, "it_mj": it, "facility_mj": f}
            for (h, t, p, m), (it, f) in sorted(sums.items())
        ],
    )


def forget(store: Store, before: datetime) -> None:
    """Drop hours and gaps older than ``before`` (retention)."""
    with store.transaction() as tx:
        tx.s.execute(delete(_HOURS).where(_HOURS.c.hour < before))
        tx.s.execute(delete(_GAPS).where(_GAPS.c.end < before))


def hours(
    store: Store, since: datetime, until: datetime, tenant: str | None = None
) -> list[EnergyHour]:
    """Rows of hours starting in [since, until) (of one tenant when given), in order."""
    q = select(EnergyHourRow).where(EnergyHourRow.hour >= _hour_of(since))
    q = q.where(EnergyHourRow.hour < until)
    if tenant is not None:
        q = q.where(EnergyHourRow.holder == TENANT, EnergyHourRow.tenant == tenant)
    order = (EnergyHourRow.hour, EnergyHourRow.holder, EnergyHourRow.tenant, EnergyHourRow.pool)
    with Session(store.engine) as s:
        return [
            EnergyHour(
                r.holder, r.tenant, r.pool, r.gpu_model, r.hour, r.it_mj, r.facility_mj, r.gpu_us
            )
            for r in s.scalars(q.order_by(*order, EnergyHourRow.gpu_model))
        ]


def gaps(store: Store, since: datetime, until: datetime) -> list[Gap]:
    q = select(EnergyGapRow).where(EnergyGapRow.end > since, EnergyGapRow.start < until)
    with Session(store.engine) as s:
        return [Gap(r.start, r.end) for r in s.scalars(q.order_by(EnergyGapRow.start))]


def totals(store: Store) -> list[tuple[str, str, str, str, int, int]]:
    """(holder, tenant, pool, model, IT mJ, facility mJ) in all: the counters of /metrics."""
    cols = (_TOTALS.c.holder, _TOTALS.c.tenant, _TOTALS.c.pool, _TOTALS.c.gpu_model)
    q = select(*cols, _TOTALS.c.it_mj, _TOTALS.c.facility_mj).order_by(*cols)
    with Session(store.engine) as s:
        return [(h, t, p, m, int(it), int(fac)) for h, t, p, m, it, fac in s.execute(q)]


def _hour_of(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def hour_pieces(start: datetime, end: datetime) -> Sequence[tuple[datetime, int]]:
    """(UTC hour, microseconds) of [start, end), cut at whole hours."""
    out: list[tuple[datetime, int]] = []
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    while start < end:
        hour = _hour_of(start)
        piece = min(end, hour + timedelta(hours=1))
        d = piece - start
        out.append((hour, (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds))
        start = piece
    return out
