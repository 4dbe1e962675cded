"""The WorkloadManager protocol over a real Slurm cluster, driven the way operators do."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scheduler.errors import InvalidRequest, NotFound
from scheduler.protocol import Allocation, DrainMode, JobInfo, NodeStatus
from scheduler.slurm.commands import SlurmCommands, SlurmDriver
from scheduler.slurm.parse import RunningJob, is_drained, node_pool, node_status, running_jobs


class SlurmWorkloadManager:
    """One Slurm cluster; ``pools`` maps Slurm partition → computectl pool.

    A node in several configured partitions belongs to the first one in
    ``pools``; nodes in none of them are not computectl's and are not listed.
    """

    kind = "slurm"

    def __init__(self, commands: SlurmDriver, pools: Mapping[str, str]) -> None:
        if not pools:
            raise ValueError("a Slurm backend needs at least one partition → pool")
        self.commands = commands
        self.pools = dict(pools)

    @classmethod
    def create(
        cls,
        pools: Mapping[str, str],
        *,
        slurm_conf: Path | None = None,
        bin_dir: Path | None = None,
        timeout_seconds: float = 30.0,
    ) -> SlurmWorkloadManager:
        """A backend running Slurm's CLIs (the settings' ``[pools.slurm]`` table)."""
        return cls(SlurmCommands(bin_dir, slurm_conf, timeout_seconds), pools)

    # -- reading -------------------------------------------------------------------------------

    def list_nodes(self) -> list[NodeStatus]:
        raw_nodes = self._raw_nodes()
        jobs = self._jobs_per_node(running_jobs(self.commands.squeue_json()))
        out = []
        for raw in raw_nodes:
            pool = node_pool(raw, self.pools)
            if pool is not None:
                out.append(node_status(raw, pool, jobs[str(raw["name"])]))
        return out

    def node(self, name: str) -> NodeStatus:
        """One node as Slurm reports it; NotFound if it is not in a configured partition."""
        raw = self._raw_node(name)
        pool = node_pool(raw, self.pools)
        if pool is None:
            raise NotFound(
                f"node {name} is in none of the partitions {', '.join(self.pools)} "
                f"(it is in {', '.join(raw.get('partitions') or []) or 'none'})"
            )
        jobs = self._jobs_per_node(running_jobs(self.commands.squeue_json()))
        return node_status(raw, pool, jobs[name])

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

    # -- acting --------------------------------------------------------------------------------

    def drain(self, node: str, reason: str, mode: DrainMode = "drain") -> None:
        self.drain_many([node], reason, mode)

    def drain_many(self, nodes: Sequence[str], reason: str, mode: DrainMode = "drain") -> None:
        """Drain ``nodes`` in one scontrol call (the same reason for all)."""
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidRequest("Slurm needs a reason to drain a node")
        self.commands.update_nodes(nodes, state="drain", reason=reason)
        if mode == "down":
            # DOWN ends the running jobs (Slurm requeues or kills them per JobRequeue).
            # The DRAIN set first stays when the node comes back from DOWN (with
            # ReturnToService=2 it does so at once), so no job starts in between or after.
            self.commands.update_nodes(nodes, state="down", reason=reason)

    def resume(self, node: str) -> None:
        self.resume_many([node])

    def resume_many(self, nodes: Sequence[str]) -> None:
        """Resume ``nodes`` in one scontrol call; nodes not drained are left as they are."""
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

    # -- helpers -------------------------------------------------------------------------------

    def _raw_nodes(self) -> list[dict[str, Any]]:
        nodes = self.commands.sinfo_json().get("nodes") or []
        return [n for n in nodes if isinstance(n, dict) and n.get("name")]

    def _raw_node(self, name: str) -> dict[str, Any]:
        for raw in self._raw_nodes():
            if raw["name"] == name:
                return raw
        raise NotFound(f"Slurm does not know node {name}")

    @staticmethod
    def _jobs_per_node(jobs: Iterable[RunningJob]) -> Counter[str]:
        return Counter(node for j in jobs for node in j.gpus_by_node)
