"""The composition root: settings in, the wired control plane out. Nothing is global.

Each backend (simulated, Slurm, Kubernetes) has one builder that turns its pools' settings
into what the control plane needs of it; building the runtime is a loop over them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from compute.backends import Backends, Wired, WiringContext
from compute.clock import Clock, FuncClock, SystemClock
from compute.config import KubernetesPool, PoolSettings, Settings, SlurmPool
from compute.services import (
    acceptance,
    budget,
    drift,
    energy,
    job_impact,
    learned_floors,
    lemons,
    nvlink_domains,
    power_caps,
    rack_budgets,
)
from compute.services.acting import Acting
from compute.services.fabric import FabricService
from compute.services.gate import Gate
from compute.services.ingest import Ingest
from compute.services.nodes import NodeService
from compute.services.pools import record_pools
from compute.services.remediation import BurnInLauncher, Remediator
from compute.services.sweep import SweepDeps, Sweeper, SweepReport
from compute.services.sweep_gc import full_collections_held
from compute.services.tenants import TenantService
from compute.simulation import wiring as simulated
from compute.simulation.datacenter import SimulatedDatacenter
from compute.simulation.technician import repair_due
from compute.store import Store
from health.policy import PolicyConfig
from health.simulated import SimulatedTelemetry
from health.thresholds import Thresholds
from scheduler.pairs import PairLauncher

__all__ = ["Runtime", "builders"]


class Leading(Protocol):
    """Whether this process may act now (compute.services.leadership.Leadership)."""

    def acting(self) -> bool: ...


# Pools of one backend in, each pool's wiring out.
Builder = Callable[[list[PoolSettings], WiringContext], dict[str, Wired]]


def _slurm(pools: list[PoolSettings], ctx: WiringContext) -> dict[str, Wired]:
    from scheduler.slurm import wiring

    tables = [(p.name, p.slurm) for p in pools if isinstance(p, SlurmPool)]
    built = wiring.build(tables)
    return {name: Wired.of(w) for name, w in built.items()}


def _kubernetes(pools: list[PoolSettings], ctx: WiringContext) -> dict[str, Wired]:
    from scheduler.kubernetes import wiring

    tables = [(p.name, p.kubernetes) for p in pools if isinstance(p, KubernetesPool)]
    return {name: Wired.of(w) for name, w in wiring.build(tables).items()}


def builders() -> dict[str, Builder]:
    """The builder of each backend, by the name pools give in ``backend``."""
    return {"simulated": simulated.build, "slurm": _slurm, "kubernetes": _kubernetes}


@dataclass
class Runtime:
    settings: Settings
    store: Store
    clock: Clock
    backends: Backends
    policy: PolicyConfig
    thresholds: Thresholds
    ingest: Ingest
    remediator: Remediator
    nodes: NodeService
    sweeper: Sweeper
    tenants: TenantService
    fabric: FabricService
    acting: Acting
    datacenter: SimulatedDatacenter | None = None
    sweep_lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when a posted result asks for a decision now (``act_on_attention``).
    attention: threading.Event = field(default_factory=threading.Event)
    # None: this process always acts (one control plane on its store).
    leadership: Leading | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        datacenter: SimulatedDatacenter | None = None,
        wiring: Mapping[str, Builder] | None = None,
    ) -> Runtime:
        """``wiring`` replaces backends' builders by name (tests: a backend's double)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(settings.sqlalchemy_url)
        pools = settings.effective_pools
        dc = datacenter if datacenter is not None else simulated.datacenter(settings, pools)
        clock: Clock = FuncClock(dc.now) if dc is not None else SystemClock()
        node_rack = simulated.seed_topology(store, dc, clock) if dc is not None else {}
        policy = settings.remediation.policy()
        th = settings.checks.thresholds()
        attention = threading.Event()
        ingest = Ingest(
            store,
            clock,
            policy,
            notify=lambda _node: attention.set(),
            floors=learned_floors.FloorJudge(store, clock, enabled=settings.floors.learned),
        )
        ctx = WiringContext(settings, store, clock, ingest, th, dc)
        backends = Backends()
        burn_ins: dict[str, BurnInLauncher] = {}
        pair_launchers: dict[str, PairLauncher] = {}
        for backend, build in {**builders(), **(wiring or {})}.items():
            members = [p for p in pools if p.backend == backend]
            for name, wired in (build(members, ctx) if members else {}).items():
                backends.add(name, wired.manager, wired.tenants, wired.usage)
                if wired.burn_in is not None:
                    burn_ins[name] = wired.burn_in
                if wired.pairs is not None:
                    pair_launchers[name] = wired.pairs
        # New pools in their backend's adopt mode; a recorded pool keeps its operators' mode.
        record_pools(store, pools, clock)
        remediator = Remediator(store, backends, clock, policy, burn_ins)
        gate = Gate(store, clock, settings.remediation.brake)
        acting = Acting(store, remediator, clock, policy, gate.admit)
        nodes = NodeService(store, backends, clock, remediator)
        telemetry = SimulatedTelemetry(dc.fleet_access) if dc is not None else None
        sweeper = Sweeper(
            SweepDeps(
                store=store,
                backends=backends,
                clock=clock,
                policy=policy,
                thresholds=th,
                acting=acting,
                telemetry=telemetry,
                node_rack=node_rack,
                new_nodes=settings.remediation.new_nodes,
                retention=timedelta(days=settings.sweep.results_retention_days),
                passes_every=timedelta(seconds=settings.sweep.passing_results_every_seconds),
            )
        )
        rt = cls(
            settings=settings,
            store=store,
            clock=clock,
            backends=backends,
            policy=policy,
            thresholds=th,
            ingest=ingest,
            remediator=remediator,
            nodes=nodes,
            sweeper=sweeper,
            tenants=TenantService(store, backends, clock),
            fabric=FabricService(store, clock, nodes, pair_launchers, policy),
            acting=acting,
            datacenter=dc,
            attention=attention,
        )
        remediator.may_act = rt.may_act
        return rt

    def may_act(self) -> bool:
        return self.leadership is None or self.leadership.acting()

    def act_on_attention(self, limit: int = 100) -> int:
        """Decide and act now on the nodes posted results asked about (oldest first, at
        most ``limit``); returns how many were acted on. The event is cleared first: one set
        meanwhile is for a result this call may not have seen."""
        self.attention.clear()
        if not self.may_act():
            return 0
        return self.acting.attend(limit)

    def close(self) -> None:
        self.backends.close()
        self.store.close()

    def sweep(self) -> SweepReport:
        # Full collections held over the hooks too: what they read of the fleet (energy reads
        # every node again) came after the sweep's millions of objects, which each full
        # collection walked again (energy's read of 10,240 nodes took 4x the sweep's own).
        with self.sweep_lock, full_collections_held():
            report = self.sweeper.run()
            # Kubernetes pods' GPU time and the tenants' budgets, on what the sweep just read.
            report.errors += budget.track(self)
            # Tenants' objects against their specs, every [tenants] drift_interval_seconds.
            report.errors += drift.check(self, self.clock.now()).errors
            # Power: caps past their expiry reverted, racks over budget acted on, energy
            # accrued from the power the sweep just read.
            report.errors += power_caps.after_sweep(self)
            report.errors += rack_budgets.after_sweep(self)
            report.errors += energy.after_sweep(self)
            report.errors += nvlink_domains.after_sweep(self)
            report.errors += learned_floors.after_sweep(self)
            report.errors += lemons.after_sweep(self)
            report.errors += job_impact.after_sweep(self)
            report.errors += acceptance.after_sweep(self)
            if self.datacenter is not None:
                repair_due(
                    self.store,
                    self.nodes,
                    self.datacenter,
                    self.clock,
                    self.settings.simulation.technician_repair_hours,
                )
            return report
