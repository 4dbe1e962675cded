"""The builder that wires Slurm pools to the control plane."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scheduler.slurm.backend import SlurmWorkloadManager
from scheduler.slurm.burnin import BurnInReservations, SlurmBurnIn
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.pairs import SlurmPairs
from scheduler.slurm.settings import SlurmSettings
from scheduler.slurm.tenants import SlurmTenants
from scheduler.slurm.usage import SlurmUsage
from scheduler.wiring import PoolWiring


def build(pools: Sequence[tuple[str, SlurmSettings]]) -> dict[str, PoolWiring]:
    """One backend per Slurm cluster, serving all its partitions; the burn-in launchers of the
    pools that name a burn-in report URL; a pair launcher for every pool."""
    clusters: dict[tuple[Path | None, Path | None], list[tuple[str, SlurmSettings]]] = {}
    for name, sl in pools:
        clusters.setdefault(sl.cluster, []).append((name, sl))
    out: dict[str, PoolWiring] = {}
    for (slurm_conf, bin_dir), members in clusters.items():
        commands = SlurmCommands(
            bin_dir,
            slurm_conf,
            # Pools of one cluster share its commands: the most patient setting wins.
            max(sl.command_timeout_seconds for _, sl in members),
        )
        partitions = {sl.partition_of(name): name for name, sl in members}
        # Reservation-aware even without a launcher: a burn-in reservation left from when
        # the pool had one still ends when its node is drained or resumed.
        reservations = BurnInReservations(commands)
        racks = {name: sl.rack_feature_prefix for name, sl in members}
        backend = SlurmWorkloadManager(commands, partitions, reservations, racks)
        # One account tree per tenant in the cluster's accounting, over the same commands.
        tenants = SlurmTenants(commands, partitions)
        usage = SlurmUsage(commands, partitions)
        for name, sl in members:
            partition = sl.partition_of(name)
            burn_in = None
            if sl.burn_in_report_url:
                burn_in = SlurmBurnIn(
                    reservations,
                    partition,
                    sl.burn_in_report_url,
                    command=sl.node_command,
                    time_limit_minutes=sl.burn_in_time_limit_minutes,
                    reservation_minutes=sl.burn_in_reservation_minutes,
                    output=sl.burn_in_output,
                    account=sl.burn_in_account,
                )
            pairs = SlurmPairs(commands, partition, sl.node_command)
            out[name] = PoolWiring(backend, tenants, burn_in, pairs, usage)
    return out
