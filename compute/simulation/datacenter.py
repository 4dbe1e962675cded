"""The simulated datacenter: a fleet (health side) and a cluster (scheduler side) in one world.

Like a real Slurm controller, it is a system apart from computectl: its state
lives in its own file under the data directory, and every process that
touches it (the server's sweeps, an operator's `computectl nodes drain`)
works on it under a lock, one operation at a time, seeing the latest state.
Time only moves when someone advances it: the `serve`/`demo` loop does, at the
configured acceleration.

The world is held in memory. An operation (a `session`) takes the lock and
reads only what other processes wrote since this one last looked; on the way
out it writes only what it changed: the nodes, jobs and tenants it touched
(each model marks them), the clocks, and the GPUs' packed loads when time moved
(compute.simulation.worldfile, rows in SQLite: per-row upserts in one small
transaction, with no journal of our own to compact). A read (the clock, a node
listing, telemetry) therefore costs a lock and one generation lookup, whatever
the size of the fleet; the JSON file earlier versions rewrote whole on every
change is imported once.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from compute.config import PoolSettings, SimulationSettings
from compute.domain import Gpu, Pool, Rack, Room, Site
from compute.services.sweep_gc import full_collections_held
from compute.simulation import codec
from compute.simulation.worldfile import WorldFile
from health.simulated import FAULTS, FaultKind, FleetSpec, SimulatedFleet
from health.simulated.nvl72 import fail_switch_tray
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
        # Slow links (a cable or a switch port between two nodes): the pair between the two
        # runs at this share of the fabric's figure. Held by this process only (the pair
        # test runs in the process that injected them: tests, the demo).
        self._slow_links: dict[frozenset[str], float] = {}
        self._gen = -1  # the file's generation this process's world reflects
        self._saved_head: codec.HeadKey | None = None
        self._t0 = float(int(start if start is not None else datetime.now(UTC).timestamp()))
        self.fleet: SimulatedFleet
        self.cluster: SimulatedCluster
        self._file: WorldFile | None = None
        if state_path is None:
            self.fleet, self.cluster = self._fresh(settings.seed)
            self._apply_loads()
            return
        self._file = WorldFile(state_path.with_suffix(".db"))
        weakref.finalize(self, self._file.close)
        # A new site is tens of thousands of GPUs' loads, jobs and rows to write.
        with self._file.locked(), full_collections_held():
            if self._file.generation()[0] == 0:
                self._create(state_path.with_suffix(".json"))
            else:
                self._refresh()

    def _fresh(self, seed: int, warm: bool = True) -> tuple[SimulatedFleet, SimulatedCluster]:
        return (
            SimulatedFleet(self.fleet_spec, seed, self._t0),
            SimulatedCluster(self.cluster_spec, self.settings.seed, self._t0, warm=warm),
        )

    def _create(self, legacy: Path) -> None:
        """The first process here: the world as the seed makes it, or as an older version
        left it in its JSON file."""
        assert self._file is not None
        if legacy.exists():
            raw = json.loads(legacy.read_text())
            if raw.get("version") != STATE_VERSION:
                raise RuntimeError(f"simulation state {legacy} has an unknown version")
            rows = codec.legacy_rows(raw)
            self.fleet, self.cluster = self._fresh(int(raw["fleet"]["seed"]), warm=False)
            codec.apply_rows(self.fleet, self.cluster, rows)
            self.fleet.loads_changed = True
            rows += codec.changed_rows(self.fleet, self.cluster, codec.head_key(*self._world()))
        else:
            self.fleet, self.cluster = self._fresh(self.settings.seed)
            self._apply_loads()
            rows = codec.changed_rows(self.fleet, self.cluster, None)
        self._file.write(rows, 1)
        self._gen = 1
        self._saved_head = codec.head_key(*self._world())

    def _world(self) -> tuple[SimulatedFleet, SimulatedCluster]:
        return self.fleet, self.cluster

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
        """Hold the world for one operation: what others changed is read first, what this
        operation changed is written on the way out."""
        with self._lock:
            outer = self._depth == 0 and self._file is not None
            if outer:
                assert self._file is not None
                self._file.lock()
                try:
                    self._refresh()
                except BaseException:
                    self._file.unlock()
                    raise
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if outer:
                    assert self._file is not None
                    try:
                        self._persist()
                    finally:
                        self._file.unlock()

    @contextmanager
    def fleet_access(self) -> Iterator[SimulatedFleet]:
        with self.session():
            yield self.fleet

    @contextmanager
    def cluster_access(self) -> Iterator[SimulatedCluster]:
        with self.session():
            yield self.cluster

    def _refresh(self) -> None:
        assert self._file is not None
        gen, floor = self._file.generation()
        if gen == self._gen:
            return
        if self._gen < floor or gen < self._gen:
            rows = self._file.all_rows()
            seed = codec.fleet_seed(rows)
            self.fleet, self.cluster = self._fresh(
                self.settings.seed if seed is None else seed, warm=False
            )
        else:
            rows = self._file.rows_since(self._gen)
        codec.apply_rows(self.fleet, self.cluster, rows)
        self._gen = gen
        self._saved_head = codec.head_key(*self._world())

    def _persist(self) -> None:
        assert self._file is not None
        rows = codec.changed_rows(self.fleet, self.cluster, self._saved_head)
        if not rows:
            return
        self._file.write(rows, self._gen + 1)
        self._gen += 1
        self._saved_head = codec.head_key(*self._world())

    # -- time ------------------------------------------------------------------------------

    # The time this holder last moved the world to (None: it never moved it).
    _moved_to: float | None = None

    def now(self) -> datetime:
        """The simulated time. A holder that moves time itself (the serve loop advances it
        every half second) knows it without the world: taking the world for it made every
        clock read (each API request's) wait for whatever held the world, a sweep's
        telemetry for seconds. Time another holder moves is seen at this one's next advance.
        A holder that never moves time reads it as stored now."""
        moved = self._moved_to
        if moved is not None:
            return datetime.fromtimestamp(moved, UTC)
        with self._lock:
            # Nothing written since this holder last looked (one generation lookup): its
            # world's time is the stored one, without the file's lock or a look for changes
            # to write (none are pending between operations). A sweep that acts on thousands
            # of nodes reads the clock for each event it records.
            if self._depth > 0 or self._file is None or self._file.generation()[0] == self._gen:
                return self.fleet.now_datetime()
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
            self._moved_to = self.fleet.now
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
                    for g in n.identities
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

    def inject_link(self, a: str, b: str, factor: float = 0.3) -> None:
        """The link between nodes ``a`` and ``b`` runs at ``factor`` of its speed: every
        other pair of either node is healthy, so only a pair test that pairs these two
        sees it."""
        with self.session():
            if a == b or a not in self.fleet.nodes or b not in self.fleet.nodes:
                raise KeyError(f"{a} - {b}")
            if not 0 < factor < 1:
                raise ValueError("a slow link's factor is above 0 and below 1")
            self._slow_links[frozenset((a, b))] = factor

    def repair_link(self, a: str, b: str) -> None:
        self._slow_links.pop(frozenset((a, b)), None)

    def link_factor(self, a: str, b: str) -> float:
        """The share of its speed the link between ``a`` and ``b`` runs at (1.0: healthy)."""
        return self._slow_links.get(frozenset((a, b)), 1.0)

    def fail_switch_tray(self, rack: str, tray: int = 0) -> list[str]:
        """An NVL72 rack's NVLink switch tray fails: its whole NVLink domain is degraded
        (health/simulated/nvl72.py). Jobs keep running, slower: returns the rack's nodes."""
        with self.session():
            return fail_switch_tray(self.fleet, rack, tray)
