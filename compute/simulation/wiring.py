"""The simulated backend's builder: the simulated datacenter's pools wired to the control
plane (its workload manager, tenants, burn-in on the simulated probe, pair test)."""

from __future__ import annotations

from compute.backends import Wired, WiringContext
from compute.clock import Clock
from compute.config import PoolSettings, Settings
from compute.domain import AuditEntry
from compute.errors import ConfigError
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
    """Each simulated node's GPU UUIDs as the store recorded them, read in one query on first
    use rather than one per burn-in (3,000 burn-ins on a 10,240-node site's first sweep): the
    simulated site's inventory is recorded once (seed_topology) and a repair keeps its GPUs."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._all: dict[str, tuple[str, ...]] | None = None

    def __call__(self, node: str) -> tuple[str, ...]:
        if self._all is None:
            self._all = self._store.gpu_uuids()
        return self._all.get(node, ())


def seed_topology(store: Store, dc: SimulatedDatacenter, clock: Clock) -> dict[str, str]:
    """Record the simulated site's sites, rooms, racks, pools and GPU inventory once; each
    node's rack."""
    if store.meta("topology") is not None:
        # Every later start: the racks alone, not the inventory of every GPU (81,920 at 10k).
        with dc.fleet_access() as fleet:
            return {n.name: n.rack for n in fleet.nodes.values()}
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
