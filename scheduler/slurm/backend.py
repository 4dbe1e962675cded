"""The WorkloadManager protocol over a real Slurm cluster, driven the way operators do."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from scheduler.errors import InvalidRequest, NotFound, SchedulerError, Unreachable
from scheduler.protocol import Allocation, BatchResult, DrainMode, JobInfo, NodeStatus
from scheduler.slurm.burnin import BurnInReservations, burn_in_reason
from scheduler.slurm.commands import SlurmCommands, SlurmDriver, TopologyDriver
from scheduler.slurm.parse import (
    RunningJob,
    is_drained,
    node_pool,
    node_rack,
    node_status,
    parse_blocks,
    parse_topology,
    running_jobs,
)
from scheduler.slurm.work import SacctDriver, merge, node_fail_args, sacct_work, squeue_work
from scheduler.slurm.work import work_on_args as _work_on_args
from scheduler.topology import note_unbelieved
from scheduler.work import WorkRead

_log = logging.getLogger("computectl.scheduler.slurm")


class SlurmWorkloadManager:
    """One Slurm cluster; ``pools`` maps Slurm partition → computectl pool.

    A node in several configured partitions belongs to the first one in
    ``pools``; nodes in none of them are not computectl's and are not listed.
    With ``burn_in``, a node in computectl's burn-in reservation is listed as drained by
    computectl, and draining or resuming a node ends its burn-in reservation.
    ``racks`` maps pool → the node feature prefix that names a node's rack (``rack:``); a
    node's leaf switch comes from Slurm's topology when it runs topology/tree.
    """

    kind = "slurm"

    def __init__(
        self,
        commands: SlurmDriver,
        pools: Mapping[str, str],
        burn_in: BurnInReservations | None = None,
        racks: Mapping[str, str] | None = None,
    ) -> None:
        if not pools:
            raise ValueError("a Slurm backend needs at least one partition → pool")
        self.commands = commands
        self.pools = dict(pools)
        self.burn_in = burn_in
        self.racks = dict(racks or {})

    @classmethod
    def create(
        cls,
        pools: Mapping[str, str],
        *,
        slurm_conf: Path | None = None,
        bin_dir: Path | None = None,
        timeout_seconds: float = 30.0,
        racks: Mapping[str, str] | None = None,
    ) -> SlurmWorkloadManager:
        """A backend running Slurm's CLIs (the settings' ``[pools.slurm]`` table)."""
        commands = SlurmCommands(bin_dir, slurm_conf, timeout_seconds)
        return cls(commands, pools, BurnInReservations(commands), racks)

    # -- reading -------------------------------------------------------------------------------

    def list_nodes(self) -> list[NodeStatus]:
        raw_nodes = self._raw_nodes()
        jobs = self._jobs_per_node(running_jobs(self.commands.squeue_json()))
        held = self._burning_in(raw_nodes)
        switches, blocks = self._topology()
        out = []
        for raw in raw_nodes:
            pool = node_pool(raw, self.pools)
            if pool is not None:
                status = self._status(raw, pool, jobs[str(raw["name"])], held, switches)
                domain = blocks.get(status.name, "")
                out.append(replace(status, nvlink_domain=domain) if domain else status)
        return out

    def node(self, name: str) -> NodeStatus:
        """One node as Slurm reports it; NotFound if it is not in a configured partition.

        Its switch is left unknown (""): every node's health check asks this, and the
        topology is slurmctld's to send once per listing, not once per node."""
        raw = self._raw_node(name)
        pool = node_pool(raw, self.pools)
        if pool is None:
            raise NotFound(
                f"node {name} is in none of the partitions {', '.join(self.pools)} "
                f"(it is in {', '.join(raw.get('partitions') or []) or 'none'})"
            )
        jobs = self._jobs_per_node(running_jobs(self.commands.squeue_json()))
        return self._status(raw, pool, jobs[name], self._burning_in([raw]), {})

    def jobs_on(self, node: str) -> list[JobInfo]:
        self._raw_node(node)  # NotFound for a node Slurm does not know
        return [
            JobInfo(id=j.id, tenant=j.account, gpus=j.gpus_by_node[node], state=j.state)
            for j in running_jobs(self.commands.squeue_json())
            if node in j.gpus_by_node
        ]

    def allocations(self) -> list[Allocation]:
        # The node's pool, not the job's partition: capacity is counted per node,
        # and a node in two partitions belongs to one pool.
        pool_of = {
            str(raw["name"]): pool
            for raw in self._raw_nodes()
            if (pool := node_pool(raw, self.pools)) is not None
        }
        return [
            Allocation(tenant=j.account, pool=pool_of[node], node=node, gpus=gpus, job=j.id)
            for j in running_jobs(self.commands.squeue_json())
            for node, gpus in j.gpus_by_node.items()
            if node in pool_of
        ]

    # -- what ran where (scheduler.work.WorkHistory) ---------------------------------------

    def work_on(self, node: str, since: datetime, until: datetime) -> WorkRead:
        """The jobs squeue runs on ``node`` now, and those sacct saw on it in the window."""
        running = squeue_work(self.commands.squeue_json(), node)
        if not isinstance(self.commands, SacctDriver):
            return running
        tz = datetime.now().astimezone().tzinfo  # sacct reads and prints local time
        text = self.commands.sacct(*_work_on_args(node, since, until, tz))
        return merge(running, sacct_work(text, tz, node))

    def failed_work(self, since: datetime, until: datetime) -> WorkRead:
        """Jobs that ended NODE_FAIL in the window, one entry per node they ran on."""
        if not isinstance(self.commands, SacctDriver):
            return WorkRead([])
        tz = datetime.now().astimezone().tzinfo
        read = sacct_work(self.commands.sacct(*node_fail_args(since, until, tz)), tz)
        return WorkRead([w for w in read.work if w.state == "node_fail"], read.skipped)

    # -- acting --------------------------------------------------------------------------------

    def drain(self, node: str, reason: str, mode: DrainMode = "drain") -> None:
        self.drain_many([node], reason, mode)

    def drain_many(
        self, nodes: Sequence[str], reason: str, mode: DrainMode = "drain"
    ) -> BatchResult:
        """Drain ``nodes`` in one scontrol call (the same reason for all): all or none."""
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidRequest("Slurm needs a reason to drain a node")
        self.commands.update_nodes(nodes, state="drain", reason=reason)
        if self.burn_in is not None:
            # After the DRAIN: the node must take no other work once the reservation is gone.
            try:
                self.burn_in.release(nodes)
            except SchedulerError as exc:
                # The drain itself is done; a reservation left (its cancelled job still
                # COMPLETING, say) holds a drained node, is released again by the next
                # drain or resume, and ends by itself at its EndTime.
                _log.warning(
                    "drained %s, but its burn-in reservation was not released: %s",
                    ",".join(nodes),
                    exc,
                )
        if mode == "down":
            # DOWN ends the running jobs (Slurm requeues or kills them per JobRequeue).
            # The DRAIN set first stays when the node comes back from DOWN (with
            # ReturnToService=2 it does so at once), so no job starts in between or after.
            self.commands.update_nodes(nodes, state="down", reason=reason)
        return BatchResult()

    def resume(self, node: str) -> None:
        self.resume_many([node])

    def resume_many(self, nodes: Sequence[str]) -> BatchResult:
        """Resume ``nodes`` in one scontrol call; nodes not drained are left as they are.

        A node in computectl's burn-in reservation leaves it (it is idle there already).
        """
        if self.burn_in is not None:
            # Before the RESUME, and raising: a node still reserved must not be resumed.
            self.burn_in.release(nodes)
        try:
            self.commands.update_nodes(nodes, state="resume")
        except InvalidRequest:
            # scontrol refuses to resume a node that is not drained ("Invalid node state
            # specified") but still resumes the others: resuming is idempotent for us.
            raw = {str(r["name"]): r for r in self._raw_nodes()}
            unknown = [n for n in nodes if n not in raw]
            if unknown:
                raise NotFound(f"Slurm does not know node(s) {', '.join(unknown)}") from None
            still = [n for n in nodes if is_drained(raw[n])]
            if still and len(still) < len(nodes):
                self.commands.update_nodes(still, state="resume")
            elif still:
                raise
        # No other error is swallowed: NotFound, Unreachable, PermissionDenied propagate.
        return BatchResult()

    # -- helpers -------------------------------------------------------------------------------

    def _raw_nodes(self) -> list[dict[str, Any]]:
        nodes = self.commands.sinfo_json().get("nodes")
        # A listing without its node list is no listing: an empty one would read as every
        # node gone.
        if not isinstance(nodes, list):
            raise SchedulerError("sinfo --json gave no node list")
        return [n for n in nodes if isinstance(n, dict) and n.get("name")]

    def _burning_in(self, raw_nodes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """Node → computectl's burn-in reservation holding it, if any node is undrained.

        The reservation list is asked for, not the node's RESERVED flag: slurmctld sets that
        flag a second or so after the node is resumed into the reservation.
        """
        if self.burn_in is None or all(is_drained(raw) for raw in raw_nodes):
            return {}
        return self.burn_in.holding()

    def _topology(self) -> tuple[dict[str, str], dict[str, str]]:
        """Node → leaf switch (topology/tree) and node → NVLink domain (topology/block:
        ``block/<name>``), in one command; {} for what Slurm's topology plugin does not
        tell (or the driver cannot). Only an unreachable slurmctld is an error: a listing
        without switches then would read as every node moved."""
        if not isinstance(self.commands, TopologyDriver):
            return {}, {}
        try:
            text = self.commands.topology_text()
        except Unreachable:
            raise
        except SchedulerError as exc:
            _log.warning("Slurm's topology could not be read; no leaf switches known: %s", exc)
            return {}, {}
        blocks, unbelieved = parse_blocks(text)
        note_unbelieved(_log, "Slurm topology block names", unbelieved)
        return parse_topology(text), blocks

    def _status(
        self,
        raw: Mapping[str, Any],
        pool: str,
        jobs: int,
        held: Mapping[str, str],
        switches: Mapping[str, str],
    ) -> NodeStatus:
        name = str(raw["name"])
        rack = node_rack(raw, self.racks.get(pool, ""))
        status = node_status(raw, pool, jobs, rack=rack, switch=switches.get(name, ""))
        reservation = held.get(status.name)
        if reservation is None or status.drain:
            return status
        # Resumed into the reservation only so the burn-in job can start: to the control
        # plane the node is still drained by computectl, and never back in service.
        return replace(status, drain=True, reason=burn_in_reason(reservation))

    def _raw_node(self, name: str) -> dict[str, Any]:
        for raw in self._raw_nodes():
            if raw["name"] == name:
                return raw
        raise NotFound(f"Slurm does not know node {name}")

    @staticmethod
    def _jobs_per_node(jobs: Iterable[RunningJob]) -> Counter[str]:
        return Counter(node for j in jobs for node in j.gpus_by_node)
