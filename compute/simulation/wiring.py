"""The simulated backend's builder: the simulated datacenter's pools wired to the control
plane (its workload manager, tenants, burn-in on the simulated probe, pair test)."""

from __future__ import annotations

from collections.abc import Sequence

from compute.backends import Wired, WiringContext
from compute.clock import Clock
from compute.config import PoolSettings, Settings
from compute.domain import AuditEntry
from compute.errors import ConfigError
from compute.services.sweep_gc import full_collections_held
from compute.simulation.burnin import SimulatedBurnIn
from compute.simulation.datacenter import SimulatedDatacenter
from compute.simulation.pairs import SimulatedPairs
from compute.store import Store
from scheduler.simulated import SimulatedTenants, SimulatedUsage, SimulatedWorkloadManager


def datacenter(settings: Settings, pools: list[PoolSettings]) -> SimulatedDatacenter | None:
    """The simulated datacenter, if any pool is simulated (its clock is the control plane's)."""
    if not any(p.backend == "simulated" for p in pools):
        return None
    if not settings.simulation.enabled:
        raise ConfigError("simulated pools need simulation.enabled = true")
    return SimulatedDatacenter(
        settings.simulation, pools, settings.data_dir / "simulation" / "state.json"
    )


def build(pools: list[PoolSettings], ctx: WiringContext) -> dict[str, Wired]:
    dc = ctx.datacenter
    if dc is None:
        return {}
    manager = SimulatedWorkloadManager(dc.cluster_access)
    tenants = SimulatedTenants(dc.cluster_access)
    burn_in = SimulatedBurnIn(dc, ctx.ingest, ctx.thresholds, _RecordedUuids(ctx.store))
    pairs = SimulatedPairs(dc)
    usage = SimulatedUsage(dc.cluster_access)
    return {p.name: Wired(manager, tenants, burn_in, pairs, usage) for p in pools}


class _RecordedUuids:
    """Simulated nodes' GPU UUIDs as the store recorded them, read for the nodes asked about
    (one query for a batch of burn-ins) and kept: the simulated site's inventory is recorded
    once (seed_topology) and a repair keeps its GPUs. Reading every node's (81,920 UUIDs at
    10,240 nodes) for the few burn-ins of a steady sweep cost more than the burn-ins."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, tuple[str, ...]] = {}

    def __call__(self, nodes: Sequence[str]) -> dict[str, tuple[str, ...]]:
        missing = [n for n in nodes if n not in self._known]
        if missing:
            found = self._store.gpu_uuids(missing)
            self._known.update({n: found.get(n, ()) for n in missing})
        return {n: self._known[n] for n in nodes}


def seed_topology(store: Store, dc: SimulatedDatacenter, clock: Clock) -> dict[str, str]:
    """Record the simulated site's sites, rooms, racks, pools and GPU inventory once; each
    node's rack."""
    if store.meta("topology") is not None:
        # Every later start: the racks alone, not the inventory of every GPU (81,920 at 10k).
        with dc.fleet_access() as fleet:
            return {n.name: n.rack for n in fleet.nodes.values()}
    with full_collections_held():  # 81,920 GPUs' identities and records at 10,240 nodes
        return _record_topology(store, dc, clock)


def _record_topology(store: Store, dc: SimulatedDatacenter, clock: Clock) -> dict[str, str]:
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
    return inv.node_rack
