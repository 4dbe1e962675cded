"""The composition root: settings in, the wired control plane out. Nothing is global."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from compute.backends import Backends
from compute.clock import Clock, FuncClock, SystemClock
from compute.config import PoolSettings, Settings
from compute.domain import AuditEntry, Node, Pool
from compute.errors import ConfigError
from compute.services.fabric import FabricService
from compute.services.ingest import Ingest
from compute.services.nodes import NodeService
from compute.services.remediation import BurnInLauncher, Remediator
from compute.services.sweep import SweepDeps, Sweeper, SweepReport
from compute.services.tenants import TenantService
from compute.simulation.burnin import SimulatedBurnIn
from compute.simulation.datacenter import SimulatedDatacenter
from compute.simulation.pairs import SimulatedPairs
from compute.simulation.technician import repair_due
from compute.store import Store
from health.policy import PolicyConfig
from health.simulated import SimulatedTelemetry
from health.thresholds import Thresholds
from scheduler.kubernetes import KubernetesTenants, KubernetesWorkloadManager
from scheduler.kubernetes.burnin import KubernetesBurnIn
from scheduler.kubernetes.pairs import KubernetesPairs
from scheduler.pairs import PairLauncher
from scheduler.simulated import SimulatedTenants, SimulatedWorkloadManager
from scheduler.slurm import SlurmCommands, SlurmWorkloadManager
from scheduler.slurm.burnin import BurnInReservations, SlurmBurnIn
from scheduler.slurm.pairs import SlurmPairs
from scheduler.slurm.tenants import SlurmTenants

log = logging.getLogger("computectl")


def policy_config(settings: Settings) -> PolicyConfig:
    r = settings.remediation
    return PolicyConfig(
        consecutive_failures=r.consecutive_failures,
        drain_budget_fraction=r.drain_budget_fraction,
        drain_budget_min_nodes=r.drain_budget_min_nodes,
        repeat_failure_window=timedelta(hours=r.repeat_failure_window_hours),
        burn_in_max_attempts=r.burn_in_max_attempts,
        burn_in_timeout=timedelta(minutes=r.burn_in_timeout_minutes),
        down_checks=frozenset(r.down_checks),
        periodic_burn_in=(
            timedelta(days=r.periodic_burn_in_days) if r.periodic_burn_in_days > 0 else None
        ),
        periodic_burn_in_per_sweep=r.periodic_burn_in_per_sweep,
    )


def thresholds(settings: Settings) -> Thresholds:
    c = settings.checks
    return Thresholds(
        temperature_warn_celsius=c.temperature_warn_celsius,
        temperature_fail_celsius=c.temperature_fail_celsius,
        power_over_limit_ratio=c.power_over_limit_ratio,
        nvlink_error_growth_warn=c.nvlink_error_growth_warn,
        burnin_relative_floor=c.burnin_relative_floor,
    )


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
    datacenter: SimulatedDatacenter | None = None
    sweep_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, datacenter: SimulatedDatacenter | None = None) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(settings.sqlalchemy_url)
        pools = settings.effective_pools
        dc = datacenter
        if dc is None and any(p.backend == "simulated" for p in pools):
            if not settings.simulation.enabled:
                raise ConfigError("simulated pools need simulation.enabled = true")
            dc = SimulatedDatacenter(
                settings.simulation, pools, settings.data_dir / "simulation" / "state.json"
            )
        clock: Clock = FuncClock(dc.now) if dc is not None else SystemClock()
        backends = Backends()
        node_rack: dict[str, str] = {}
        if dc is not None:
            sim_backend = SimulatedWorkloadManager(dc.cluster_access)
            sim_tenants = SimulatedTenants(dc.cluster_access)
            for p in pools:
                if p.backend == "simulated":
                    backends.add(p.name, sim_backend, sim_tenants)
            inv = dc.inventory()
            node_rack = inv.node_rack
            _seed_topology(store, dc, clock)
        slurm_launchers = _add_slurm_backends(backends, pools, settings.server.api_token)
        kube_launchers = _add_kubernetes_backends(backends, pools)
        _record_pools(store, [p for p in pools if p.backend != "simulated"])
        policy = policy_config(settings)
        th = thresholds(settings)
        ingest = Ingest(store, clock, policy)
        launchers: dict[str, BurnInLauncher] = {}
        if dc is not None:
            sim_burn_in = SimulatedBurnIn(
                dc, ingest, th, lambda node: tuple(g.uuid for g in store.gpus(node))
            )
            launchers = {p.name: sim_burn_in for p in pools if p.backend == "simulated"}
        launchers.update(slurm_launchers)
        launchers.update(kube_launchers)
        remediator = Remediator(store, backends, clock, policy, launchers)
        nodes = NodeService(store, backends, clock, remediator)
        telemetry = SimulatedTelemetry(dc.fleet_access) if dc is not None else None
        sweeper = Sweeper(
            SweepDeps(
                store=store,
                backends=backends,
                clock=clock,
                policy=policy,
                thresholds=th,
                remediator=remediator,
                telemetry=telemetry,
                node_rack=node_rack,
                new_nodes=settings.remediation.new_nodes,
                retention=timedelta(days=settings.sweep.results_retention_days),
                passes_every=timedelta(seconds=settings.sweep.passing_results_every_seconds),
            )
        )
        return cls(
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
            fabric=FabricService(
                store, clock, nodes, _pair_launchers(backends, pools, settings, dc), policy
            ),
            datacenter=dc,
        )

    def close(self) -> None:
        self.backends.close()
        self.store.close()

    def sweep(self) -> SweepReport:
        with self.sweep_lock:
            report = self.sweeper.run()
            if self.datacenter is not None:
                repair_due(
                    self.store,
                    self.nodes,
                    self.datacenter,
                    self.clock,
                    self.settings.simulation.technician_repair_hours,
                )
            return report


def _add_slurm_backends(
    backends: Backends, pools: list[PoolSettings], api_token: str | None = None
) -> dict[str, BurnInLauncher]:
    """One backend per Slurm cluster (slurm.conf and tools), serving all its partitions; the
    burn-in launchers of the pools that name a burn-in report URL."""
    launchers: dict[str, BurnInLauncher] = {}
    clusters: dict[tuple[Path | None, Path | None], list[PoolSettings]] = {}
    for p in pools:
        if p.backend == "slurm":
            sl = p.slurm_settings
            clusters.setdefault((sl.slurm_conf, sl.bin_dir), []).append(p)
    for (slurm_conf, bin_dir), members in clusters.items():
        commands = SlurmCommands(
            bin_dir,
            slurm_conf,
            # Pools of one cluster share its commands: the most patient setting wins.
            max(p.slurm_settings.command_timeout_seconds for p in members),
        )
        partitions = {p.slurm_partition: p.name for p in members}
        # Reservation-aware even without a launcher: a burn-in reservation left from when
        # the pool had one still ends when its node is drained or resumed.
        reservations = BurnInReservations(commands)
        backend = SlurmWorkloadManager(commands, partitions, reservations)
        # One account tree per tenant in the cluster's accounting, over the same commands.
        tenants = SlurmTenants(commands, partitions)
        for p in members:
            backends.add(p.name, backend, tenants)
            sl = p.slurm_settings
            if sl.burn_in_report_url:
                job = SlurmBurnIn(
                    reservations,
                    p.slurm_partition,
                    sl.burn_in_report_url,
                    command=sl.node_command,
                    time_limit_minutes=sl.burn_in_time_limit_minutes,
                    reservation_minutes=sl.burn_in_reservation_minutes,
                    output=sl.burn_in_output,
                    account=sl.burn_in_account,
                    api_token=api_token,
                )
                launchers[p.name] = JobBurnIn(job)
    return launchers


def _add_kubernetes_backends(
    backends: Backends, pools: list[PoolSettings]
) -> dict[str, BurnInLauncher]:
    """One backend per cluster credential (kubeconfig, context) and GPU resource name; the
    burn-in launchers of the pools that name a burn-in image."""
    launchers: dict[str, BurnInLauncher] = {}
    clusters: dict[tuple[Path | None, str | None, str], list[PoolSettings]] = {}
    for p in pools:
        if p.backend == "kubernetes":
            k = p.kubernetes_settings
            clusters.setdefault((k.kubeconfig, k.context, k.gpu_resource), []).append(p)
    for (kubeconfig, context, gpu_resource), members in clusters.items():
        backend = KubernetesWorkloadManager.create(
            {p.name: p.kubernetes_node_selector for p in members},
            kubeconfig=kubeconfig,
            context=context,
            gpu_resource=gpu_resource,
            # Pools of one cluster share its client: the most patient setting wins.
            timeout_seconds=max(p.kubernetes_settings.request_timeout_seconds for p in members),
        )
        # One namespace per tenant in the same cluster, over the same client.
        tenants = KubernetesTenants(backend.client, backend.pools, gpu_resource)
        for p in members:
            backends.add(p.name, backend, tenants)
            k = p.kubernetes_settings
            if k.burn_in_image:
                job = KubernetesBurnIn(
                    backend.client, k.burn_in_image, k.burn_in_namespace, gpu_resource
                )
                launchers[p.name] = JobBurnIn(job)
    return launchers


class BurnInJob(Protocol):
    """Starts a burn-in job on a node of a workload manager (Slurm, Kubernetes)."""

    def launch(self, node: str, gpus: int) -> str: ...


class JobBurnIn:
    """Burn-in through a workload manager's job: the node's results arrive by ingest."""

    def __init__(self, job: BurnInJob) -> None:
        self.job = job

    def launch(self, node: Node) -> None:
        self.job.launch(node.name, node.gpu_count)


def _pair_launchers(
    backends: Backends,
    pools: list[PoolSettings],
    settings: Settings,
    dc: SimulatedDatacenter | None,
) -> dict[str, PairLauncher]:
    """The pair test's launcher per pool, over the pool's own workload manager connection."""
    launchers: dict[str, PairLauncher] = {}
    for p in pools:
        if p.backend == "simulated" and dc is not None:
            launchers[p.name] = SimulatedPairs(dc)
        elif p.backend == "slurm":
            backend = backends.for_pool(p.name)
            if isinstance(backend, SlurmWorkloadManager) and isinstance(
                backend.commands, SlurmCommands
            ):
                launchers[p.name] = SlurmPairs(
                    backend.commands, p.slurm_partition, p.slurm_settings.node_command
                )
        elif p.backend == "kubernetes":
            backend = backends.for_pool(p.name)
            k = p.kubernetes_settings
            if k.burn_in_image and isinstance(backend, KubernetesWorkloadManager):
                # The pair probe ships in the node-check image that runs burn-in.
                launchers[p.name] = KubernetesPairs(
                    backend.client, k.burn_in_image, k.burn_in_namespace, k.gpu_resource
                )
    return launchers


def _record_pools(store: Store, pools: list[PoolSettings]) -> None:
    """Pools of real clusters have no seeded topology: record them (merge) on every start."""
    if pools:
        with store.transaction() as tx:
            tx.put_topology([], [], [], [Pool(p.name, p.backend, p.gpu_model) for p in pools])


def _seed_topology(store: Store, dc: SimulatedDatacenter, clock: Clock) -> None:
    """Record the simulated site's sites, rooms, racks, pools and GPU inventory once."""
    if store.meta("topology") is not None:
        return
    inv = dc.inventory()
    with store.transaction() as tx:
        tx.put_topology(inv.sites, inv.rooms, inv.racks, inv.pools)
        tx.add_gpus([g for gpus in inv.gpus.values() for g in gpus])
        tx.set_meta(
            "topology", {"source": "simulation", "racks": len(inv.racks), "nodes": len(inv.gpus)}
        )
        tx.add_audit(
            AuditEntry(
                at=clock.now(),
                actor="computectl",
                action="topology.seed",
                target=inv.sites[0].name if inv.sites else "",
                detail={"racks": len(inv.racks), "nodes": len(inv.gpus)},
            )
        )


class Loop:
    """The background loop of `serve`/`demo`: advance the simulation, sweep on schedule."""

    def __init__(self, rt: Runtime, sweep_interval: float, acceleration: float) -> None:
        self.rt = rt
        self.sweep_interval = sweep_interval
        self.acceleration = acceleration
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="computectl-loop", daemon=True)
        self.sweeps = 0
        self.last_error: str | None = None
        self.started_wall: float | None = None

    def start(self) -> None:
        self.started_wall = time.time()
        self.thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        last_tick = time.monotonic()
        next_sweep = last_tick
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                if self.rt.datacenter is not None:
                    self.rt.datacenter.advance((now - last_tick) * self.acceleration)
                last_tick = now
                if self.sweep_interval > 0 and now >= next_sweep:
                    report = self.rt.sweep()
                    self.sweeps += 1
                    self.last_error = None
                    for a in report.actions:
                        log.info("%s %s: %s", a["action"], a["node"], a["reason"])
                    next_sweep = now + self.sweep_interval
            except Exception as exc:  # the loop must outlive one bad sweep
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("sweep failed")
                next_sweep = now + self.sweep_interval
            self.stop.wait(0.5)
