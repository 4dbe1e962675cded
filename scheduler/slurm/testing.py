"""An in-memory Slurm for tests of the layers above: the `SlurmDriver` seam of
`scheduler.slurm.commands`, answering as Slurm 22.05's tools do.

    slurm = InMemorySlurm.of({"gpu-001": "training", "gpu-002": "training"})
    wm = SlurmWorkloadManager(slurm, {"training": "training"})
    slurm.run_job("gpu-001", account="acme", gpus=4)
    with slurm.down():
        wm.list_nodes()  # Unreachable, as with slurmctld stopped

`InMemorySlurm.recorded` starts from captured ``sinfo --json``/``squeue --json`` output
instead. Only the workload manager's side (sinfo, squeue, scontrol update) is held;
accounting (tenants) and reservations are tested against the real cluster
(tests/integration).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.errors import InvalidRequest, NotFound, Unreachable
from scheduler.slurm.parse import is_drained, tres_gpus

UNREACHABLE = "Unable to contact slurm controller (connect failure)"


@dataclass
class InMemorySlurm:
    """Nodes as ``sinfo --json`` lists them and jobs as ``squeue --json`` does, by name;
    ``scontrol update`` changes them as Slurm would."""

    nodes: dict[str, dict[str, Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    reachable: bool = True
    updates: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)
    # Nodes whose GPUs in use the double counts from its jobs (not from a captured listing).
    counted: frozenset[str] = frozenset()

    @classmethod
    def of(cls, partitions: Mapping[str, str], gpus: int = 8) -> InMemorySlurm:
        """Idle nodes (node → partition), each with ``gpus`` H100s."""
        nodes = {
            name: {
                "name": name,
                "state": "idle",
                "state_flags": [],
                "reason": "",
                "partitions": [partition],
                "gres": f"gpu:h100:{gpus}",
            }
            for name, partition in partitions.items()
        }
        return cls(nodes, counted=frozenset(nodes))

    @classmethod
    def recorded(cls, sinfo: Mapping[str, Any], squeue: Mapping[str, Any]) -> InMemorySlurm:
        """The cluster a captured ``sinfo --json`` and ``squeue --json`` show."""
        nodes = {str(n["name"]): dict(n) for n in sinfo.get("nodes") or []}
        return cls(nodes, [dict(j) for j in squeue.get("jobs") or []])

    # -- the SlurmDriver seam ------------------------------------------------------------------

    def sinfo_json(self) -> dict[str, Any]:
        self._contact()
        return {"nodes": [self._listed(raw) for raw in self.nodes.values()]}

    def squeue_json(self) -> dict[str, Any]:
        self._contact()
        return {"jobs": copy.deepcopy(self.jobs)}

    def update_nodes(self, nodes: Sequence[str], **fields: str) -> None:
        """``scontrol update nodename=<nodes> state=drain|down|resume [reason=...]``."""
        self._contact()
        if any(n not in self.nodes for n in nodes):
            raise NotFound("Invalid node name specified")
        self.updates.append((list(nodes), dict(fields)))
        state = fields.get("state", "").lower()
        refused = False
        for name in nodes:
            raw = self.nodes[name]
            flags = [f for f in raw.get("state_flags") or [] if f != "DRAIN"]
            if state == "drain":
                raw.update(state_flags=[*flags, "DRAIN"], reason=fields.get("reason", ""))
            elif state == "down":
                raw.update(state="down", reason=fields.get("reason", ""))
                self.jobs = [j for j in self.jobs if j.get("nodes") != name]
            elif state == "resume":
                if not is_drained(raw):
                    refused = True
                    continue
                base = str(raw.get("state") or "").lower()
                raw.update(
                    state="idle" if base in ("down", "fail") else base,
                    state_flags=flags,
                    reason="",
                )
        if refused:
            # scontrol resumes the others, then reports the one it could not.
            raise InvalidRequest("Invalid node state specified")

    # -- what a test does to the cluster -------------------------------------------------------

    def run_job(self, node: str, account: str, gpus: int) -> str:
        """A running job of ``account`` holding ``gpus`` GPUs of ``node``; its id."""
        job = str(1000 + len(self.jobs))
        self.jobs.append(
            {
                "job_id": int(job),
                "job_state": "RUNNING",
                "account": account,
                "partition": self.nodes[node]["partitions"][0],
                "nodes": node,
                "tres_alloc_str": f"cpu=1,node=1,billing=1,gres/gpu={gpus}",
            }
        )
        return job

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """slurmctld unreachable inside the block."""
        self.reachable = False
        try:
            yield
        finally:
            self.reachable = True

    def reasons(self) -> dict[str, str]:
        """Reasons of the nodes taking no new work, as ``sinfo -R`` shows them."""
        return {n: str(raw.get("reason") or "") for n, raw in self.nodes.items() if is_drained(raw)}

    # -- helpers -------------------------------------------------------------------------------

    def _contact(self) -> None:
        if not self.reachable:
            raise Unreachable(UNREACHABLE)

    def _listed(self, raw: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(raw)
        if raw["name"] in self.counted:
            used = sum(
                tres_gpus(j.get("tres_alloc_str"))
                for j in self.jobs
                if j.get("nodes") == raw["name"]
            )
            out["gres_used"] = f"gpu:h100:{used}(IDX:N/A)"
            if used and out["state"] == "idle":
                out["state"] = "mixed"
        return out
