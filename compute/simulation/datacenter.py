"""The simulated datacenter: a fleet (health side) and a cluster (scheduler side) in one world.

Like a real Slurm controller, it is a system apart from computectl: its state
lives in its own file under the data directory, and every process that
touches it (the server's sweeps, an operator's `computectl nodes drain`)
works on that file under a lock. Time only moves when someone advances it:
the `serve`/`demo` loop does, at the configured acceleration.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compute.config import PoolSettings, SimulationSettings
from compute.domain import Gpu, Pool, Rack, Room, Site
from health.simulated import FAULTS, FaultKind, FleetSpec, SimulatedFleet
from scheduler.simulated import ClusterSpec, SimulatedCluster

STEP_SECONDS = 60.0
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Inventory:
    sites: list[Site]
    rooms: list[Room]
    racks: list[Rack]
    pools: list[Pool]
    node_rack: dict[str, str]
    node_pool: dict[str, str]
    gpus: dict[str, list[Gpu]]


class SimulatedDatacenter:
    def __init__(
        self,
        settings: SimulationSettings,
        pools: list[PoolSettings],
        state_path: Path | None,
        start: float | None = None,
    ) -> None:
        self.settings = settings
        self.state_path = state_path
        self.fleet_spec = FleetSpec(
            site=settings.site,
            room=settings.room,
            racks=settings.racks,
            nodes_per_rack=settings.nodes_per_rack,
            gpus_per_node=settings.gpus_per_node,
            gpu_model=settings.gpu_model,
            rack_power_budget_watts=settings.rack_power_budget_watts,
            fault_rate_per_node_hour=settings.fault_rate_per_node_hour,
            fault_weights=dict(settings.fault_weights),
        )
        self._pools = [p for p in pools if p.backend == "simulated"]
        self.cluster_spec = ClusterSpec(
            nodes=self._node_pools(),
            pool_kinds={p.name: p.kind for p in self._pools},
            target_utilisation=settings.target_utilisation,
        )
        self._lock = threading.RLock()
        self._depth = 0
        self._stamp: tuple[int, int] | None = None
        self._lockfile: Any = None
        self._saved_text = ""
        self.fleet: SimulatedFleet
        self.cluster: SimulatedCluster
        t0 = float(int(start if start is not None else datetime.now(UTC).timestamp()))
        if state_path is None or not state_path.exists():
            self.fleet = SimulatedFleet(self.fleet_spec, settings.seed, t0)
            self.cluster = SimulatedCluster(self.cluster_spec, settings.seed, t0)
            self._apply_loads()
            if state_path is not None:
                state_path.parent.mkdir(parents=True, exist_ok=True)
                with self.session():
                    pass
        else:
            with self.session():
                pass

    def _node_pools(self) -> dict[str, tuple[str, str, int]]:
        s = self.settings
        by_kind: dict[str, str] = {}
        for p in self._pools:
            by_kind.setdefault(p.kind, p.name)
        training = by_kind.get("training") or by_kind.get("inference", "training")
        inference = by_kind.get("inference") or training
        out: dict[str, tuple[str, str, int]] = {}
        for r in range(s.racks):
            pool = inference if r >= s.racks - s.inference_racks else training
            for n in range(s.nodes_per_rack):
                out[self.fleet_spec.node_name(r, n)] = (pool, s.gpu_model, s.gpus_per_node)
        return out

    # -- shared state ----------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[SimulatedDatacenter]:
        """Hold the world: loaded fresh if another process changed it, saved on the way out."""
        with self._lock:
            outer = self._depth == 0
            if outer and self.state_path is not None:
                lock_path = self.state_path.with_suffix(".lock")
                self._lockfile = open(lock_path, "a+")  # noqa: SIM115 (held across the yield)
                fcntl.flock(self._lockfile, fcntl.LOCK_EX)
                self._load_if_changed()
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if outer and self.state_path is not None:
                    try:
                        self._save_if_changed()
                    finally:
                        fcntl.flock(self._lockfile, fcntl.LOCK_UN)
                        self._lockfile.close()
                        self._lockfile = None

    @contextmanager
    def fleet_access(self) -> Iterator[SimulatedFleet]:
        with self.session():
            yield self.fleet

    @contextmanager
    def cluster_access(self) -> Iterator[SimulatedCluster]:
        with self.session():
            yield self.cluster

    def _load_if_changed(self) -> None:
        assert self.state_path is not None
        try:
            st = self.state_path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        text = self.state_path.read_text()
        raw = json.loads(text)
        if raw.get("version") != STATE_VERSION:
            raise RuntimeError(f"simulation state {self.state_path} has an unknown version")
        self.fleet = SimulatedFleet.from_dict(self.fleet_spec, raw["fleet"])
        self.cluster = SimulatedCluster.from_dict(
            self.cluster_spec, self.settings.seed, raw["cluster"]
        )
        self._stamp = stamp
        self._saved_text = text

    def _save_if_changed(self) -> None:
        assert self.state_path is not None
        text = json.dumps(
            {
                "version": STATE_VERSION,
                "fleet": self.fleet.to_dict(),
                "cluster": self.cluster.to_dict(),
            },
            separators=(",", ":"),
        )
        if text == self._saved_text and self.state_path.exists():
            return
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.state_path)
        st = self.state_path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)
        self._saved_text = text

    # -- time ------------------------------------------------------------------------------

    def now(self) -> datetime:
        with self.session():
            return self.fleet.now_datetime()

    def advance(self, seconds: float) -> list[tuple[str, str]]:
        """Move the world forward; returns the faults injected on the way (node, kind)."""
        injected: list[tuple[str, str]] = []
        with self.session():
            end = self.fleet.now + seconds
            t = self.fleet.now
            while t < end:
                t = min(end, t + STEP_SECONDS)
                self.cluster.advance(t)
                new = self.fleet.advance(t)
                for node in self.fleet.nodes_needing_job_kill(new):
                    self.cluster.kill_jobs_on(node)
                injected += [(n, k.value) for n, k in new]
            self._apply_loads()
        return injected

    def _apply_loads(self) -> None:
        minute = int(self.fleet.now // 60)
        running = self.cluster.jobs_by_node()
        for name in self.fleet.nodes:
            if name in self.cluster.nodes:
                self.fleet.set_load(
                    name, self.cluster.utilisation(name, minute, running.get(name, []))
                )

    # -- what the control plane is told about the hardware ---------------------------------

    def inventory(self) -> Inventory:
        s = self.settings
        with self.session():
            racks = [
                Rack(
                    name=self.fleet_spec.rack_name(r),
                    room=s.room,
                    power_budget_watts=s.rack_power_budget_watts,
                )
                for r in range(s.racks)
            ]
            gpus = {
                n.name: [
                    Gpu(node=n.name, index=g.index, uuid=g.uuid, model=n.model, serial=g.serial)
                    for g in n.gpus
                ]
                for n in self.fleet.nodes.values()
            }
            node_rack = {n.name: n.rack for n in self.fleet.nodes.values()}
        node_pool = {name: v[0] for name, v in self.cluster_spec.nodes.items()}
        return Inventory(
            sites=[Site(s.site)],
            rooms=[Room(s.room, s.site)],
            racks=racks,
            pools=[Pool(p.name, p.backend, p.gpu_model) for p in self._pools],
            node_rack=node_rack,
            node_pool=node_pool,
            gpus=gpus,
        )

    def repair(self, node: str) -> None:
        with self.session():
            self.fleet.repair(node)

    def inject(self, node: str, kind: str, gpu: int = 0) -> None:
        with self.session():
            if node not in self.fleet.nodes:
                raise KeyError(node)
            fault = FaultKind(kind)
            self.fleet.inject(node, fault, gpu)
            if FAULTS[fault].kills_jobs:
                self.cluster.kill_jobs_on(node)
