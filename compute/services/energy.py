"""Energy and GPU-hours per tenant, pool and GPU model, accrued from what was measured.

After each sweep the acting control plane attributes the energy every node drew since the
previous sweep (compute/store/energy.py keeps it per UTC hour):

* a node's energy over the interval is the power the sweep just read (``Node.power_watts``:
  the node's own reading, host included, where it reports one) times the interval; each
  sweep's reading stands for the interval since the one before;
* it is shared by the node's GPUs: each tenant holding GPUs there (the allocations the
  backends reported in that sweep) gets its GPUs' share; the node's other GPUs' share goes
  to "idle" when the node is in service, else to "out of service" (draining, drained,
  burn-in, repair, provisioning, retired). Host power is shared the same way, by GPUs: a
  tenant holding half a node's GPUs pays half its host too. Allocations name how many
  GPUs, not which, so the share is by count (GPUs of one node are of one model, so this is
  the per-GPU split whenever their draw is alike);
* facility energy is a part's energy times the PUE of the node's site ([energy] site_pue,
  else [energy] pue);
* an interval longer than [energy] max_gap_seconds (the control plane was down) is not
  extrapolated: it is recorded as a gap, reported, and counted as nothing;
* whole millijoules, split by largest remainder, so the parts of a node's energy add up to
  it exactly: the sum over tenants, idle and out of service is the fleet's measured energy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from compute.store import Store
from compute.store import energy as kept

if TYPE_CHECKING:
    from compute.config_energy import EnergySettings
    from compute.runtime import Runtime

_MJ_PER_WATT_US = 1e-3  # 1 W for 1 µs is 1 µJ


def largest_remainder(total: int, weights: Iterable[int]) -> list[int]:
    """``total`` split in whole units in proportion to ``weights`` (not all zero), the
    units left by rounding down going to the largest remainders: the parts add to it."""
    ws = list(weights)
    whole = sum(ws)
    parts = [total * w // whole for w in ws]
    left = total - sum(parts)
    order = sorted(range(len(ws)), key=lambda i: (-(total * ws[i] % whole), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def _holders(node: kept.Metered, tenants: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """(holder, tenant, GPUs) of the node: tenants by their GPUs, the rest idle or out of
    service. Allocations over the node's GPUs (a backend's count ahead of the inventory)
    leave nothing to the rest."""
    out = [(kept.TENANT, t, g) for t, g in sorted(tenants.items()) if g > 0]
    rest = max(0, node.gpu_count - sum(g for _, _, g in out))
    if rest or not out:
        holder = kept.IDLE if node.in_service else kept.OUT_OF_SERVICE
        out.append((holder, "", rest if rest else 1))
    return out


def attribute(
    nodes: Iterable[kept.Metered],
    allocations: Iterable[kept.Held],
    pue_of: Callable[[kept.Metered], float],
    start: datetime,
    end: datetime,
) -> dict[kept.Key, tuple[int, int, int]]:
    """Each node's energy over [start, end) per holder, pool, GPU model and UTC hour:
    (IT mJ, facility mJ, GPU-µs)."""
    by_node: dict[str, dict[str, int]] = {}
    for a in allocations:
        held = by_node.setdefault(a.node, {})
        held[a.tenant] = held.get(a.tenant, 0) + max(0, a.gpus)
    pieces = kept.hour_pieces(start, end)
    out: dict[kept.Key, tuple[int, int, int]] = {}
    for node in nodes:
        watts = node.power_watts
        if not (watts > 0 and math.isfinite(watts)):
            continue  # nothing measured, nothing to attribute
        holders = _holders(node, by_node.get(node.name, {}))
        pue = pue_of(node)
        for hour, us in pieces:
            mj = round(watts * us * _MJ_PER_WATT_US)
            for (holder, tenant, gpus), part in zip(
                holders, largest_remainder(mj, (g for _, _, g in holders)), strict=True
            ):
                key = (holder, tenant, node.pool, node.gpu_model, hour)
                it, fac, gus = out.get(key, (0, 0, 0))
                held_us = gpus * us if holder == kept.TENANT or node.gpu_count else 0
                out[key] = (it + part, fac + round(part * pue), gus + held_us)
    return out


def site_pue(store: Store, settings: EnergySettings) -> Callable[[kept.Metered], float]:
    """The PUE of a node's site (rack, room, site as the store records them)."""
    site_of_room = {r.name: r.site for r in store.rooms()}
    site_of_rack = {r.name: site_of_room.get(r.room, "") for r in store.racks()}
    cache: dict[str, float] = {}

    def pue(node: kept.Metered) -> float:
        if node.rack not in cache:
            cache[node.rack] = settings.pue_of(site_of_rack.get(node.rack, ""))
        return cache[node.rack]

    return pue


def accrue(store: Store, settings: EnergySettings, now: datetime) -> list[str]:
    """Attribute the fleet's energy since the mark up to ``now``; what could not be counted,
    one line each."""
    prev = kept.mark(store)
    if prev is None:
        kept.start(store, now)
        return []
    if now <= prev:
        return []
    gap = (now - prev).total_seconds()
    if gap > settings.max_gap_seconds:
        if kept.add(store, prev, now, {}, kept.Gap(prev, now)):
            return [
                f"energy: {gap:.0f} s since the last sweep (over [energy] max_gap_seconds "
                f"{settings.max_gap_seconds:g}); {prev.isoformat()} to {now.isoformat()} "
                "not counted"
            ]
        return []
    nodes, held = kept.metered(store)
    parts = attribute(nodes, held, site_pue(store, settings), prev, now)
    # False: another replica counted this interval (it holds the mark); nothing to add.
    kept.add(store, prev, now, parts)
    kept.forget(store, now - timedelta(days=settings.retention_days))
    return []


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: what could not be done, one line each
    (the next sweep tries again)."""
    return accrue(rt.store, rt.settings.energy, rt.clock.now())
