"""Racks against their power budgets: what the control plane does about one over.

After each sweep (by the acting control plane) each rack with a budget is judged on its
latest draw and its trend over [topology] trend_minutes: over when it draws more than it
may (its budget, or its cooling limit where lower), or is forecast to within
forecast_minutes. Going over and coming back are one event each (``rack_over_budget``,
``rack_under_budget``), never one per sweep: the standing is kept in the store. Back under
needs the draw below the limit less recover_fraction, so a rack at the line does not flap.

While a rack is over, computectl adds no load there: the gate (compute/services/gate.py)
refuses burn-ins in it (nodes back from repair wait), and with cap_gpus the power-cap service lowers
GPU limits on its idle nodes and its nodes in cap_pools; the policy reverts its own caps once
the rack is back under, and never touches an operator's.

The same pass records the configuration's topology (compute/services/topology.py) and, every
capacity_sample_minutes, a capacity sample (compute/services/capacity_plan.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from compute.config_topology import TopologySettings
from compute.domain import AUTOMATION, Event
from compute.services.capacity_plan import sample
from compute.services.forecast import ahead
from compute.services.rack_caps import cap_over, revert_under
from compute.services.topology import sync
from compute.store import topology as kept
from compute.store.topology import RackInfo, Standing, Trend

if TYPE_CHECKING:
    from compute.runtime import Runtime

log = logging.getLogger("computectl")

OVER, UNDER = "rack_over_budget", "rack_under_budget"


def judge(
    prev: Standing | None,
    rack: RackInfo,
    trend: Trend,
    now: datetime,
    topo: TopologySettings,
) -> Standing:
    """Pure: the rack's standing from its draw and trend over the window, and its standing
    before."""
    watts, per_second = trend.watts, trend.per_second
    forecast = ahead(watts, per_second, topo.forecast_minutes * 60.0)
    limit = rack.limit_watts
    if prev is not None and prev.over:
        line = limit * (1.0 - topo.recover_fraction)
        over = not (watts < line and forecast <= limit)
    else:
        over = watts > limit or forecast > limit
    changed = prev is None or prev.over != over
    detail = dict(prev.detail) if prev is not None else {}
    detail.update(
        room=rack.room,
        trend_watts_per_minute=round(per_second * 60.0, 3),
        over_now=watts > limit,
        hold=topo.hold != "off",
    )
    return Standing(
        rack=rack.name,
        over=over,
        since=now if changed else prev.since if prev is not None else now,
        at=now,
        watts=round(watts, 1),
        forecast_watts=round(forecast, 1),
        limit_watts=limit,
        capped=prev.capped if prev is not None else (),
        detail=detail,
    )


def _event(st: Standing, now: datetime) -> Event:
    if st.over:
        why = "over" if st.watts > st.limit_watts else "forecast to exceed"
        reason = (
            f"rack {st.rack} {why} its power budget: {st.watts:.0f} W now, "
            f"{st.forecast_watts:.0f} W forecast, limit {st.limit_watts:.0f} W"
        )
    else:
        reason = (
            f"rack {st.rack} back under its power budget: {st.watts:.0f} W, "
            f"limit {st.limit_watts:.0f} W"
        )
    return Event(
        at=now,
        node="",
        kind=OVER if st.over else UNDER,
        reason=reason,
        actor=AUTOMATION,
        detail={
            "rack": st.rack,
            "room": st.detail.get("room", ""),
            "watts": st.watts,
            "forecast_watts": st.forecast_watts,
            "limit_watts": st.limit_watts,
        },
    )


def evaluate(rt: Runtime, now: datetime) -> list[Standing]:
    """Judge every rack with a budget on what the sweeps recorded; the standings written
    and the transitions' events added in one transaction. The new standings."""
    topo = rt.settings.topology
    racks = [r for r in kept.racks(rt.store) if r.limit_watts > 0]
    if not racks:
        return []
    trends = kept.rack_trends(rt.store, now - timedelta(minutes=topo.trend_minutes))
    before = {s.rack: s for s in kept.standings(rt.store)}
    out: list[Standing] = []
    events: list[Event] = []
    for rack in racks:
        trend = trends.get(rack.name)
        if trend is None:
            continue  # no reading within the window: judged again once there is one
        prev = before.get(rack.name)
        st = judge(prev, rack, trend, now, topo)
        if (prev is None and st.over) or (prev is not None and prev.over != st.over):
            events.append(_event(st, now))
            log.warning("%s", events[-1].reason)
        out.append(st)
    with rt.store.transaction() as tx:
        kept.put_standings(tx, out)
        tx.add_events(events)
    return out


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: what could not be done, one line each
    (the next sweep tries again)."""
    errors: list[str] = []
    now = rt.clock.now()
    for step in (sync, sample):
        try:
            errors += step(rt)
        except Exception as exc:  # one step failing leaves the others' work standing
            errors.append(f"{step.__module__}: {exc}")
    try:
        standings = evaluate(rt, now)
    except Exception as exc:
        return [*errors, f"rack budgets: {exc}"]
    if not rt.settings.topology.cap_gpus:
        return errors
    changed: list[Standing] = []
    for st in standings:
        if st.over:
            done, errs = cap_over(rt, st, now)
        elif st.capped:
            done, errs = revert_under(rt, st)
        else:
            continue
        errors += errs
        if done != st:
            changed.append(done)
    if changed:
        with rt.store.transaction() as tx:
            kept.put_standings(tx, changed)
    return errors
