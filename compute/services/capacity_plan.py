"""Capacity planning: free GPUs by pool and model, the allocation trend from the capacity
history (one sample of GPUs by state, pool and model per [topology] capacity_sample_minutes,
kept capacity_history_days), days until full at that trend, power headroom per rack and
room, N-1 headroom (the largest rack lost), and what adding nodes to a room would draw.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from compute.config_topology import TopologySettings
from compute.domain import Node
from compute.errors import InvalidInput
from compute.services import forecast
from compute.services.capacity import gpu_states
from compute.store import Store
from compute.store import topology as kept
from health.policy import Lifecycle

if TYPE_CHECKING:
    from compute.runtime import Runtime

MAX_ADD_NODES = 100_000
MAX_ADDITIONS = 16
_ADD = re.compile(
    r"([0-9]{1,6}):([A-Za-z0-9][A-Za-z0-9._-]{0,63}):([A-Za-z0-9][A-Za-z0-9._-]{0,127})"
)


@dataclass(frozen=True, slots=True)
class Addition:
    nodes: int
    gpu_model: str
    room: str


def parse_addition(text: str) -> Addition:
    """``K:MODEL:ROOM`` (4:H100-SXM:hall-a); InvalidInput in one line otherwise."""
    m = _ADD.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidInput(f"--add {text!r}: expected NODES:MODEL:ROOM, like 4:H100-SXM:hall-a")
    k = int(m.group(1))
    if not 1 <= k <= MAX_ADD_NODES:
        raise InvalidInput(f"--add {text!r}: nodes must be 1-{MAX_ADD_NODES}")
    return Addition(k, m.group(2), m.group(3))


def sample(rt: Runtime) -> list[str]:
    """A capacity sample, when the last is capacity_sample_minutes old."""
    topo = rt.settings.topology
    now = rt.clock.now()
    last = kept.last_sample_at(rt.store)
    if last is not None and now - last < timedelta(minutes=topo.capacity_sample_minutes):
        return []
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for n in rt.store.summaries():
        for state, gpus in gpu_states(n).items():
            counts[(n.pool, n.gpu_model, state)] += gpus
    kept.add_samples(rt.store, now, counts, now - timedelta(days=topo.capacity_history_days))
    return []


def allocation_trend(
    samples: list[tuple[datetime, str, str, str, int]],
) -> dict[tuple[str, str], tuple[float, int]]:
    """Pure: per (pool, model), allocated GPUs' slope per day over the samples, and how many
    samples it rests on."""
    series: dict[tuple[str, str], dict[datetime, int]] = defaultdict(dict)
    for at, pool, model, state, gpus in samples:
        at_of = series[(pool, model)]
        at_of.setdefault(at, 0)
        if state == "allocated":
            at_of[at] += gpus
    out = {}
    for key, by_at in series.items():
        points = forecast.timed(sorted((at, float(v)) for at, v in by_at.items()))
        out[key] = (forecast.slope(points) * 86_400.0, len(points))
    return out


def _free(nodes: list[Node], trend: dict[tuple[str, str], tuple[float, int]]) -> list[Any]:
    rows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n in nodes:
        if n.state is Lifecycle.RETIRED:
            continue
        row = rows[(n.pool, n.gpu_model)]
        row["installed"] += n.gpu_count
        states = gpu_states(n)
        row["allocated"] += states.get("allocated", 0)
        row["free"] += states.get("idle", 0)
        if n.state is Lifecycle.IN_SERVICE:
            row["usable"] += n.gpu_count
    out = []
    for (pool, model), row in sorted(rows.items()):
        per_day, points = trend.get((pool, model), (0.0, 0))
        days = forecast.days_until_full(row["allocated"], row["usable"], per_day)
        out.append(
            {
                "pool": pool,
                "gpu_model": model,
                "installed": row["installed"],
                "usable": row["usable"],
                "allocated": row["allocated"],
                "free": row["free"],
                "trend_gpus_per_day": round(per_day, 3),
                "trend_samples": points,
                "days_until_full": None if days is None else round(days, 2),
            }
        )
    return out


def _n_minus_one(nodes: list[Node]) -> list[Any]:
    idle: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n in nodes:
        if n.state is Lifecycle.IN_SERVICE:
            states = gpu_states(n)
            idle[n.pool][n.rack] += states.get("idle", 0)
            used[n.pool][n.rack] += states.get("allocated", 0)
    out = []
    for pool in sorted(set(idle) | set(used)):
        rack, left = forecast.n_minus_one(idle[pool], used[pool])
        out.append(
            {
                "pool": pool,
                "largest_rack": rack,
                "rack_gpus": idle[pool].get(rack, 0) + used[pool].get(rack, 0),
                "free_after": left,
            }
        )
    return out


def node_watts(nodes: list[Node], topo: TopologySettings) -> dict[str, tuple[float, str]]:
    """Per-node watts by GPU model: the mean of the nodes in service measured drawing, else
    the configuration's catalogue. model → (watts, "measured" | "catalogue")."""
    sums: dict[str, list[float]] = defaultdict(list)
    for n in nodes:
        if n.state is Lifecycle.IN_SERVICE and n.power_watts > 0:
            sums[n.gpu_model].append(n.power_watts)
    out = {m: (w, "catalogue") for m, w in topo.node_watts.items()}
    out.update({m: (sum(v) / len(v), "measured") for m, v in sums.items()})
    return out


def plan(store: Store, topo: TopologySettings, adds: list[Addition]) -> Any:
    """The capacity forecast view (GET /api/v1/capacity/forecast). The trend is read over
    capacity_trend_days before the newest sample (the store's time, not this process's: the
    data directory and the API answer the same)."""
    if len(adds) > MAX_ADDITIONS:
        raise InvalidInput(f"at most {MAX_ADDITIONS} --add at once")
    nodes = store.nodes()
    newest = kept.last_sample_at(store)
    trend = (
        allocation_trend(
            kept.samples_since(store, newest - timedelta(days=topo.capacity_trend_days))
        )
        if newest is not None
        else {}
    )
    power = {p.rack: p.watts for p in store.latest_rack_power()}
    standing = {s.rack: s for s in kept.standings(store)}
    racks = []
    rooms: dict[str, dict[str, Any]] = {}
    for room in kept.rooms(store):
        rooms[room.name] = {
            "room": room.name,
            "site": room.site,
            "cooling_limit_watts": room.cooling_limit_watts,
            "limit_watts": 0.0,
            "watts": 0.0,
        }
    for r in kept.racks(store):
        watts = power.get(r.name, 0.0)
        st = standing.get(r.name)
        racks.append(
            {
                "rack": r.name,
                "room": r.room,
                "row": r.row,
                "limit_watts": r.limit_watts,
                "watts": watts,
                "headroom_watts": round(forecast.headroom(r.limit_watts, watts), 1),
                "forecast_watts": st.forecast_watts if st else watts,
                "over_budget": bool(st and st.over),
            }
        )
        room_row = rooms.setdefault(
            r.room,
            {
                "room": r.room,
                "site": "",
                "cooling_limit_watts": None,
                "limit_watts": 0.0,
                "watts": 0.0,
            },
        )
        room_row["limit_watts"] += r.limit_watts
        room_row["watts"] += watts
    for room_row in rooms.values():
        cooling = room_row["cooling_limit_watts"]
        if cooling is not None:
            room_row["limit_watts"] = min(room_row["limit_watts"], cooling)
        room_row["watts"] = round(room_row["watts"], 1)
        room_row["headroom_watts"] = round(
            forecast.headroom(room_row["limit_watts"], room_row["watts"]), 1
        )
    return {
        "at": newest.isoformat() if newest is not None else None,
        "trend_days": topo.capacity_trend_days,
        "free": _free(nodes, trend),
        "racks": racks,
        "rooms": [rooms[k] for k in sorted(rooms)],
        "n_minus_one": _n_minus_one(nodes),
        "additions": _additions(adds, rooms, node_watts(nodes, topo)),
    }


def _additions(
    adds: list[Addition], rooms: dict[str, dict[str, Any]], watts: dict[str, tuple[float, str]]
) -> list[Any]:
    out = []
    for a in adds:
        if a.room not in rooms:
            raise InvalidInput(
                f"--add: unknown room {a.room!r} (known: {', '.join(sorted(rooms)) or 'none'})"
            )
        if a.gpu_model not in watts:
            raise InvalidInput(
                f"--add: no power figure for GPU model {a.gpu_model!r} "
                f"(known: {', '.join(sorted(watts))}; set [topology] node_watts)"
            )
        per_node, source = watts[a.gpu_model]
        room = rooms[a.room]
        after = room["watts"] + a.nodes * per_node
        out.append(
            {
                "nodes": a.nodes,
                "gpu_model": a.gpu_model,
                "room": a.room,
                "watts_per_node": round(per_node, 1),
                "watts_source": source,
                "added_watts": round(a.nodes * per_node, 1),
                "room_watts_after": round(after, 1),
                "room_limit_watts": room["limit_watts"],
                "headroom_after_watts": round(forecast.headroom(room["limit_watts"], after), 1),
                "fits": after <= room["limit_watts"],
            }
        )
    return out
