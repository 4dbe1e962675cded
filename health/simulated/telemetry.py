"""The simulated fleet seen through the telemetry source protocol."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from health.nvlink_domain import FabricSnapshot, GpuFabric
from health.simulated.fleet import SimulatedFleet
from health.simulated.hardware import (
    _MASK,
    _MIX,
    _MUL,
    NVLINKS_PER_GPU,
    RACK_DOMAIN_MODELS,
    SimGpu,
    SimulatedNode,
    noise_state,
    noise_value,
    rack_domain,
)
from health.telemetry import (
    THROTTLE_GPU_IDLE,
    THROTTLE_HW_POWER_BRAKE,
    THROTTLE_HW_SLOWDOWN,
    THROTTLE_HW_THERMAL,
    THROTTLE_SW_POWER_CAP,
    GpuReading,
    IbPort,
    NodeSnapshot,
    TelemetrySourceError,
    XidEvent,
)

if TYPE_CHECKING:
    from health.simulated.power import SimulatedPower

FleetAccess = Callable[[], AbstractContextManager[SimulatedFleet]]


# A node's InfiniBand ports by (HCA count, HCAs down): shared, as most nodes' are alike.
PortCache = dict[tuple[int, tuple[int, ...]], tuple[IbPort, ...]]


def read_node(
    fleet: SimulatedFleet,
    n: SimulatedNode,
    since: datetime | None,
    ports: PortCache | None = None,
    at: datetime | None = None,
) -> NodeSnapshot:
    """``at``: the fleet's time as a datetime, when the caller has it (many nodes at once)."""
    minute = int(fleet.now // 60)
    limit, slowdown = fleet.limits(n.model)
    if n.pristine:  # never capped either (a cap makes its node's GPUs)
        gpus = _pristine(n, minute, limit, slowdown)
    else:
        gpus = tuple(_reading(fleet, n, g, minute, limit, slowdown) for g in n.gpus if g.present)
    events: tuple[XidEvent, ...] = ()
    if n.events:
        cutoff = since.timestamp() if since is not None else float("-inf")
        events = tuple(
            XidEvent(
                at=datetime.fromtimestamp(e["at"], UTC),
                pci_bus_id=e["bus"],
                code=e["code"],
                message=e["msg"],
                gpu_index=e["gpu"],
            )
            for e in n.events
            if e["at"] > cutoff
        )
    return FabricSnapshot(
        fabric=_fabric(fleet, n, gpus),
        node=n.name,
        at=fleet.now_datetime() if at is None else at,
        gpus=gpus,
        xid_events=events,
        host_power_watts=fleet.host_power(n),
        ib_ports=_ports(n.gpu_count, tuple(n.ib_down), {} if ports is None else ports),
        driver_version="550.90.07",
        cuda_version="12.4",
    )


def _fabric(
    fleet: SimulatedFleet, n: SimulatedNode, gpus: tuple[GpuReading, ...]
) -> tuple[GpuFabric, ...]:
    """The GPUs' NVLink fabric on a model whose rack is one domain (none on others, as NVML
    answers NotSupported there): registered, with its bandwidth degraded where links are
    down (a failed switch tray takes 2 links of every GPU in the rack)."""
    if n.model not in RACK_DOMAIN_MODELS:
        return ()
    cluster, _, clique = rack_domain(fleet.seed, n.model, n.rack).partition("/")
    return tuple(
        GpuFabric(g.index, cluster, int(clique), "completed", 0, bool(g.nvlink_links_down))
        for g in gpus
    )


_NO_REASONS: frozenset[str] = frozenset()
_IDLE = frozenset({THROTTLE_GPU_IDLE})
_POWER_CAP = frozenset({THROTTLE_SW_POWER_CAP})


def _pristine(
    n: SimulatedNode, minute: int, limit: float, slowdown: float
) -> tuple[GpuReading, ...]:
    """The readings of a node no fault ever touched: ``_reading``'s figures for GPUs in their
    first state, without making them (the sweep reads 81,920 GPUs at 10,240 nodes).
    tests/unit/test_simulated_hardware.py holds the two to the same readings."""
    model, loads = n.model, n.loads
    out = []
    # noise_state(noise, minute), noise_state(at, 7) and noise_value written out: the calls
    # cost more than the arithmetic, 81,920 times a sweep at 10,240 nodes.
    for i in n.identities:
        u = loads[i.index]
        h = i.noise
        at = ((h ^ ((minute + _MIX + (h << 6) + (h >> 2)) & _MASK)) * _MUL) & _MASK
        x = at ^ (at >> 31)
        idle = i.idle_watts
        power = idle + (i.busy_watts - idle) * math.pow(u, 1.2)
        power *= 1.0 + 0.02 * ((x % 2_000_000) / 1_000_000.0 - 1.0)
        if power > limit:
            power = limit
        x = ((at ^ ((7 + _MIX + (at << 6) + (at >> 2)) & _MASK)) * _MUL) & _MASK
        x ^= x >> 31
        temp = 28.0 + 0.068 * power + 1.5 * ((x % 2_000_000) / 1_000_000.0 - 1.0)
        if u < 0.05:
            reasons = _IDLE
        elif u > 0.97 and noise_value(noise_state(at, 9)) > 0.5:
            reasons = _POWER_CAP
        else:
            reasons = _NO_REASONS
        # Positional, in GpuReading's field order: a third cheaper than by keyword.
        out.append(
            GpuReading(
                i.index,
                i.uuid,
                i.serial,
                model,
                i.pci_bus_id,
                round(temp, 1),
                slowdown,
                round(power, 1),
                limit,
                round(u, 3),
                0,
                0,
                False,
                False,
                False,
                0,
                NVLINKS_PER_GPU,
                (),
                0,
                0,
                5 if u >= 0.05 else 1,
                5,
                16,
                16,
                reasons,
            )
        )
    return tuple(out)


def _ports(count: int, down: tuple[int, ...], cache: PortCache) -> tuple[IbPort, ...]:
    found = cache.get((count, down))
    if found is None:
        found = cache[(count, down)] = tuple(
            IbPort(
                device=f"mlx5_{i}",
                port=1,
                state="DOWN" if i in down else "ACTIVE",
                phys_state="Polling" if i in down else "LinkUp",
                rate_gbps=400.0,
                link_layer="InfiniBand",
            )
            for i in range(count)
        )
    return found


def _reading(
    fleet: SimulatedFleet, n: SimulatedNode, g: SimGpu, minute: int, limit: float, slowdown: float
) -> GpuReading:
    at = noise_state(g.noise, minute)  # unit_noise(node, GPU, minute, ...) from here on
    power = fleet.gpu_power(n, g, at)
    temp = 28.0 + 0.068 * power + 1.5 * noise_value(noise_state(at, 7))
    reasons: set[str] = set()
    if g.utilisation < 0.05:
        reasons.add(THROTTLE_GPU_IDLE)
    elif g.utilisation > 0.97 and noise_value(noise_state(at, 9)) > 0.5:
        reasons.add(THROTTLE_SW_POWER_CAP)
    if g.thermal_until > fleet.now:
        temp += 18.0
        reasons |= {THROTTLE_HW_THERMAL, THROTTLE_HW_SLOWDOWN}
    if g.power_brake_until > fleet.now:
        reasons |= {THROTTLE_HW_POWER_BRAKE, THROTTLE_HW_SLOWDOWN}
    capped = n.power_limits is not None and power >= n.power_limits[g.index] - 0.5
    if capped:
        reasons.add(THROTTLE_SW_POWER_CAP)  # held at its cap, as NVML reports it
    busy = g.utilisation >= 0.05
    return GpuReading(
        index=g.index,
        uuid=g.uuid,
        serial=g.serial,
        model=n.model,
        pci_bus_id=g.pci_bus_id,
        temperature_celsius=round(temp, 1),
        temperature_slowdown_celsius=slowdown,
        power_watts=round(power, 1),
        power_limit_watts=limit if n.power_limits is None else n.power_limits[g.index],
        utilisation_ratio=round(g.utilisation, 3),
        ecc_volatile_uncorrected=g.ecc_volatile,
        ecc_aggregate_uncorrected=g.ecc_aggregate,
        retired_pages_pending=False,
        remapped_rows_pending=g.remap_pending,
        remapped_rows_failure=g.remap_failure,
        remapped_rows_uncorrectable=g.remap_uncorrectable,
        nvlink_links_total=NVLINKS_PER_GPU,
        nvlink_links_down=tuple(sorted(g.nvlink_down)),
        nvlink_crc_errors=g.nvlink_crc,
        nvlink_replay_errors=g.nvlink_replay,
        pcie_gen_current=5 if busy else 1,
        pcie_gen_max=5,
        pcie_width_current=g.pcie_width,
        pcie_width_max=16,
        throttle_reasons=frozenset(reasons),
    )


class SimulatedTelemetry:
    """TelemetrySource over a simulated fleet held by whoever owns it."""

    def __init__(self, access: FleetAccess) -> None:
        self._access = access
        self._ports: PortCache = {}

    def snapshot(self, node: str, since: datetime | None) -> NodeSnapshot:
        with self._access() as fleet:
            n = fleet.nodes.get(node)
            if n is None:
                raise TelemetrySourceError(f"no simulated node {node!r}")
            return read_node(fleet, n, since, self._ports)

    def power_source(self, node: str) -> SimulatedPower:
        """The node's GPU power and limits (health/simulated/power.py)."""
        from health.simulated.power import SimulatedPower

        return SimulatedPower(self._access, node)

    def snapshots(self, nodes: dict[str, datetime | None]) -> Iterator[NodeSnapshot]:
        """Many nodes under one hold of the fleet (a sweep reads them all at once)."""
        with self._access() as fleet:
            at = fleet.now_datetime()
            for name, since in nodes.items():
                n = fleet.nodes.get(name)
                if n is not None:
                    yield read_node(fleet, n, since, self._ports, at)
