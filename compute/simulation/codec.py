"""The simulated world as rows (kind, key, data): what is persisted of it, and back.

The fleet and the cluster each have a head (clock, random generator, counters);
each node whose hardware or drain state was ever touched, each job and each
managed tenant has a row of its own; the GPUs' load, which moves with every step
of time, is one packed array. A node that has no row is as the seed built it.
Data is JSON text (floats round-trip exactly), the loads raw doubles; None is a
deleted job or tenant.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from health.simulated import SimulatedFleet
from health.simulated.hardware import SimulatedNode
from scheduler.simulated.cluster import SimJob, SimTenant, SimulatedCluster

FLEET, CLUSTER, LOADS, FNODE, CNODE, JOB, TENANT = (
    "fleet",
    "cluster",
    "loads",
    "fnode",
    "cnode",
    "job",
    "tenant",
)

Data = str | bytes | None
Row = tuple[str, str, Data]
# What moves whenever a head's random generator moves: compared instead of the generators.
HeadKey = tuple[Any, ...]

_GPU_FIELDS = (
    "present",
    "ecc_volatile",
    "ecc_aggregate",
    "remap_pending",
    "remap_failure",
    "remap_uncorrectable",
    "nvlink_down",
    "nvlink_crc",
    "nvlink_replay",
    "pcie_width",
    "thermal_until",
    "power_brake_until",
    "gemm_factor",
)


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def head_key(fleet: SimulatedFleet, cluster: SimulatedCluster) -> HeadKey:
    return (
        fleet.now,
        fleet.injected,
        fleet.next_fault_at,
        cluster.now,
        cluster.next_id,
        tuple(cluster.next_arrival.items()),
    )


def _rng(state: tuple[Any, ...]) -> list[Any]:
    return [state[0], list(state[1]), state[2]]


def _fleet_head(f: SimulatedFleet) -> dict[str, Any]:
    return {
        "seed": f.seed,
        "now": f.now,
        "next_fault_at": None if math.isinf(f.next_fault_at) else f.next_fault_at,
        "injected": f.injected,
        "rate": f.spec.fault_rate_per_node_hour,
        "rng": _rng(f.rng.getstate()),
    }


def _cluster_head(c: SimulatedCluster) -> dict[str, Any]:
    return {
        "now": c.now,
        "rng": _rng(c.rng.getstate()),
        "next_id": c.next_id,
        "next_arrival": {k: (None if math.isinf(v) else v) for k, v in c.next_arrival.items()},
    }


def _fnode(n: SimulatedNode) -> dict[str, Any]:
    return {
        "nccl_factor": n.nccl_factor,
        "ib_down": n.ib_down,
        "faults": n.faults,
        "events": n.events,
        "gpus": [{f: getattr(g, f) for f in _GPU_FIELDS} for g in n.gpus],
        "power_limits": n.power_limits,
    }


def _loads(f: SimulatedFleet) -> bytes:
    return array("d", [u for n in f.nodes.values() for u in n.loads]).tobytes()


def _plain(obj: SimJob | SimTenant) -> dict[str, Any]:
    """A job's or tenant's fields as they are (dataclasses.asdict deep-copies each: most of
    the cost of saving a new world's thousands of jobs)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def changed_rows(
    fleet: SimulatedFleet, cluster: SimulatedCluster, saved: HeadKey | None
) -> list[Row]:
    """The rows of what changed since the last call (the heads if ``saved`` differs); clears
    the change marks."""
    rows: list[Row] = []
    if head_key(fleet, cluster) != saved:
        rows += [
            (FLEET, "", _text(_fleet_head(fleet))),
            (CLUSTER, "", _text(_cluster_head(cluster))),
        ]
    if fleet.loads_changed:
        rows.append((LOADS, "", _loads(fleet)))
    rows += [(FNODE, name, _text(_fnode(fleet.nodes[name]))) for name in sorted(fleet.changed)]
    for name in sorted(cluster.changed_nodes):
        n = cluster.nodes[name]
        rows.append((CNODE, name, _text({"drain": n.drain, "reason": n.reason})))
    for jid in sorted(cluster.changed_jobs):
        job = cluster.jobs.get(jid)
        rows.append((JOB, str(jid), None if job is None else _text(_plain(job))))
    for name in sorted(cluster.changed_tenants):
        t = cluster.tenants.get(name)
        rows.append((TENANT, name, None if t is None else _text(_plain(t))))
    fleet.changed.clear()
    fleet.loads_changed = False
    cluster.changed_nodes.clear()
    cluster.changed_jobs.clear()
    cluster.changed_tenants.clear()
    return rows


def fleet_seed(rows: Iterable[Row]) -> int | None:
    for kind, _, data in rows:
        if kind == FLEET and isinstance(data, str):
            return int(json.loads(data)["seed"])
    return None


def apply_rows(fleet: SimulatedFleet, cluster: SimulatedCluster, rows: Iterable[Row]) -> None:
    """Bring the world to what the rows say (rows another process wrote; marks nothing)."""
    # The packed loads last: a row from an older file may carry a node's loads too.
    for kind, key, data in sorted(rows, key=lambda row: isinstance(row[2], bytes)):
        if isinstance(data, bytes):
            _apply_loads(fleet, data)
            continue
        if data is None:
            _delete(cluster, kind, key)
            continue
        raw = json.loads(data)
        if kind == FLEET:
            _apply_fleet_head(fleet, raw)
        elif kind == CLUSTER:
            _apply_cluster_head(cluster, raw)
        elif kind == FNODE and key in fleet.nodes:
            _apply_fnode(fleet.nodes[key], raw)
        elif kind == CNODE and key in cluster.nodes:
            cluster.nodes[key].drain = bool(raw["drain"])
            cluster.nodes[key].reason = str(raw["reason"])
        elif kind == JOB:
            cluster.jobs[int(key)] = SimJob(**raw)
        elif kind == TENANT:
            cluster.tenants[key] = SimTenant(**raw)


def _delete(cluster: SimulatedCluster, kind: str, key: str) -> None:
    if kind == JOB:
        cluster.jobs.pop(int(key), None)
    elif kind == TENANT:
        cluster.tenants.pop(key, None)


def _rng_state(raw: list[Any]) -> tuple[Any, ...]:
    return (raw[0], tuple(raw[1]), raw[2])


def _apply_fleet_head(f: SimulatedFleet, raw: Mapping[str, Any]) -> None:
    f.now = float(raw["now"])
    f.rng.setstate(_rng_state(raw["rng"]))
    nxt = raw.get("next_fault_at")
    f.next_fault_at = math.inf if nxt is None else float(nxt)
    if raw.get("rate") != f.spec.fault_rate_per_node_hour:
        # Settings changed the fault rate since the state was saved: redraw from now.
        f.next_fault_at = f._draw_next_fault(f.now)
    f.injected = int(raw.get("injected", 0))


def _apply_cluster_head(c: SimulatedCluster, raw: Mapping[str, Any]) -> None:
    c.now = float(raw["now"])
    c.rng.setstate(_rng_state(raw["rng"]))
    c.next_id = int(raw["next_id"])
    c.next_arrival = {
        k: (math.inf if v is None else float(v)) for k, v in raw["next_arrival"].items()
    }


def _apply_fnode(n: SimulatedNode, raw: Mapping[str, Any]) -> None:
    n.nccl_factor = float(raw["nccl_factor"])
    n.ib_down = list(raw.get("ib_down", []))
    n.faults = list(raw["faults"])
    n.events = list(raw["events"])
    limits = raw.get("power_limits")
    n.power_limits = None if limits is None else [float(v) for v in limits]
    for g, gd in zip(n.gpus, raw["gpus"], strict=False):
        for key, value in gd.items():
            setattr(g, key, value)


def _apply_loads(f: SimulatedFleet, blob: bytes) -> None:
    packed = array("d")
    packed.frombytes(blob)
    if len(packed) != sum(n.gpu_count for n in f.nodes.values()):
        return  # the site's shape changed: the next step recomputes
    values = packed.tolist()
    i = 0
    for n in f.nodes.values():
        k = n.gpu_count
        n.loads[:] = values[i : i + k]  # in place: a node's GPUs read their load from it
        i += k


def legacy_rows(raw: Mapping[str, Any]) -> list[Row]:
    """Rows from the whole-world JSON file earlier versions kept (state.json, version 1)."""
    fleet, cluster = raw["fleet"], raw["cluster"]
    heads = {k: v for k, v in fleet.items() if k != "nodes"}
    rows: list[Row] = [
        (FLEET, "", _text(heads)),
        (CLUSTER, "", _text({k: cluster[k] for k in ("now", "rng", "next_id", "next_arrival")})),
    ]
    rows += [(FNODE, name, _text(data)) for name, data in fleet["nodes"].items()]
    rows += [(CNODE, name, _text(data)) for name, data in cluster["nodes"].items()]
    rows += [(JOB, str(j["id"]), _text(j)) for j in cluster["jobs"]]
    rows += [(TENANT, t["name"], _text(t)) for t in cluster.get("tenants", [])]
    return rows
