"""What a tenant used, for billing: GPU-hours (compute/services/usage.py) beside the energy
its GPUs drew and the facility energy through its sites' PUE (compute/services/energy.py),
per UTC day, pool and GPU model; for the fleet, every tenant's plus idle and out of service.

One view for the CLI, the API and the portal (``as_dict``), and one CSV for the billing
export (``to_csv``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from compute.billing_csv import CSV_COLUMNS as CSV_COLUMNS
from compute.billing_csv import to_csv as to_csv
from compute.errors import InvalidInput, NotFoundError
from compute.services.usage import TenantUsage, UsageRow, date_window, usage_of, window
from compute.store import energy as kept

if TYPE_CHECKING:
    from compute.runtime import Runtime
    from compute.store import Store

_MJ_PER_KWH = 3_600_000_000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
NOTE_ENERGY = (
    "energy: the GPUs' share of each node's measured power (host included) between sweeps; "
    "facility energy through the site's PUE (docs/energy.md)"
)


@dataclass(frozen=True, slots=True)
class BillRow:
    tenant: str  # "" for idle and out of service
    holder: str  # "tenant", "idle", "out_of_service"
    day: date
    pool: str
    gpu_model: str
    gpu_hours: float
    energy_kwh: float
    facility_kwh: float
    sources: str  # backends that reported the GPU-hours, "+"-joined


@dataclass(frozen=True, slots=True)
class Billing:
    tenant: str | None  # None: the fleet
    since: datetime
    until: datetime
    rows: list[BillRow]
    notes: list[str] = field(default_factory=list)
    gaps: list[kept.Gap] = field(default_factory=list)


_Key = tuple[str, str, date, str, str]


def _merge(
    usage: Iterable[tuple[str, UsageRow]], energy: Iterable[kept.EnergyHour]
) -> list[BillRow]:
    us: dict[_Key, float] = {}
    src: dict[_Key, set[str]] = {}
    mj: dict[_Key, tuple[int, int]] = {}
    for tenant, r in usage:
        k = (kept.TENANT, tenant, r.day, r.pool, r.gpu_model)
        us[k] = us.get(k, 0.0) + r.gpu_hours
        src.setdefault(k, set()).add(r.source)
    for e in energy:
        k = (e.holder, e.tenant, e.hour.astimezone(UTC).date(), e.pool, e.gpu_model)
        it, fac = mj.get(k, (0, 0))
        mj[k] = (it + e.it_mj, fac + e.facility_mj)
    order = {h: i for i, h in enumerate(kept.HOLDERS)}
    keys = sorted(us.keys() | mj.keys(), key=lambda k: (order[k[0]], k[1], k[2], k[3], k[4]))
    return [
        BillRow(
            tenant=k[1],
            holder=k[0],
            day=k[2],
            pool=k[3],
            gpu_model=k[4],
            gpu_hours=us.get(k, 0.0),
            energy_kwh=mj.get(k, (0, 0))[0] / _MJ_PER_KWH,
            facility_kwh=mj.get(k, (0, 0))[1] / _MJ_PER_KWH,
            sources="+".join(sorted(src.get(k, ()))),
        )
        for k in keys
    ]


def _day(text: str, what: str) -> date:
    # fromisoformat alone takes 20260105 and 2026-W01-1 too: one spelling only.
    try:
        if _DATE.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what}: not a date (YYYY-MM-DD): {text[:40]!r}") from None


def span(
    now: datetime, days: int | None, first: str | None, last: str | None
) -> tuple[datetime, datetime]:
    """The window asked for: the last ``days`` UTC days (default 7), or the days
    ``first``..``last`` (YYYY-MM-DD; ``last`` default today); one or the other."""
    if first is None:
        if last is not None:
            raise InvalidInput("to needs from")
        return window(now, 7 if days is None else days)
    if days is not None:
        raise InvalidInput("give days or from/to, not both")
    end = _day(last, "to") if last is not None else now.astimezone(UTC).date()
    return date_window(now, _day(first, "from"), end)


def tenant_energy(store: Store, tenant: str, since: datetime, until: datetime) -> Billing:
    """The tenant's energy alone, from the store (no backend read: the portal's page)."""
    gaps = kept.gaps(store, since, until)
    rows = _merge((), kept.hours(store, since, until, tenant))
    return Billing(tenant, since, until, rows, [NOTE_ENERGY, *_gap_notes(gaps)], gaps)


def fleet_answer(rt: Runtime, first: str | None, last: str | None) -> dict[str, Any]:
    """What GET /usage answers: the fleet's billing view over the days ``first``..``last``;
    without ``first``, the UTC month so far (up to ``last``, if given)."""
    now = rt.clock.now()
    if first is None:
        end = _day(last, "to") if last is not None else now.astimezone(UTC).date()
        first = end.replace(day=1).isoformat()
    since, until = span(now, None, first, last)
    return as_dict(fleet_billing(rt, since, until))


def _gap_notes(gaps: list[kept.Gap]) -> list[str]:
    return [
        f"energy not counted from {g.start.isoformat()} to {g.end.isoformat()} "
        "(no sweep for longer than [energy] max_gap_seconds)"
        for g in gaps
    ]


def tenant_billing(
    rt: Runtime, tenant: str, since: datetime, until: datetime
) -> tuple[Billing, TenantUsage]:
    """The tenant's GPU-hours and energy over [since, until), and its GPU-hours per backend
    as `compute.services.usage.tenant_usage` gives them (one read of the backends)."""
    if rt.store.tenant(tenant) is None:
        raise NotFoundError(f"unknown tenant {tenant!r}")
    used = usage_of(rt, tenant, since, until)
    gaps = kept.gaps(rt.store, since, until)
    energy = kept.hours(rt.store, since, until, tenant)
    days = (until.date() - since.date()).days + (1 if until.time() else 0)
    report = TenantUsage(tenant, since, until, max(days, 1), [r for _, r in used.rows], used.notes)
    notes = [*used.notes, NOTE_ENERGY, *_gap_notes(gaps)]
    return Billing(tenant, since, until, _merge(used.rows, energy), notes, gaps), report


def fleet_billing(rt: Runtime, since: datetime, until: datetime) -> Billing:
    """Every tenant's GPU-hours and energy over [since, until), and the energy of idle and
    out-of-service GPUs: the energy column adds up to the fleet's measured energy."""
    used = usage_of(rt, None, since, until)
    gaps = kept.gaps(rt.store, since, until)
    energy = kept.hours(rt.store, since, until)
    rows = _merge(used.rows, energy)
    return Billing(None, since, until, rows, [*used.notes, NOTE_ENERGY, *_gap_notes(gaps)], gaps)


def as_dict(b: Billing) -> dict[str, Any]:
    """The view: rows, totals, notes and gaps (JSON types only)."""
    return {
        "tenant": b.tenant,
        "since": b.since.isoformat(),
        "until": b.until.isoformat(),
        "rows": [
            {
                "tenant": r.tenant,
                "holder": r.holder,
                "day": r.day.isoformat(),
                "pool": r.pool,
                "gpu_model": r.gpu_model,
                "gpu_hours": round(r.gpu_hours, 6),
                "energy_kwh": round(r.energy_kwh, 6),
                "facility_kwh": round(r.facility_kwh, 6),
                "sources": r.sources,
            }
            for r in b.rows
        ],
        "totals": {
            "gpu_hours": round(sum(r.gpu_hours for r in b.rows), 6),
            "energy_kwh": round(sum(r.energy_kwh for r in b.rows), 6),
            "facility_kwh": round(sum(r.facility_kwh for r in b.rows), 6),
        },
        "gaps": [{"start": g.start.isoformat(), "end": g.end.isoformat()} for g in b.gaps],
        "notes": list(b.notes),
    }
